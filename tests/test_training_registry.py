"""The stage registry (a new stage is one registration, and ``chimed-train`` and ``full`` pick it
up), stage settings that take any transformers ``TrainingArguments`` field, and the check that no
evaluation test item of any registered task — MedQA, CMMLU, C-Eval and CCKS included — is trained
on."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from chimed_eval.core.errors import ConfigError
from chimed_eval.training.config import TrainSettings, from_dict, training_kwargs
from chimed_eval.training.registry import STAGES, StageSpec, get_stage, stages

ROOT = Path(__file__).resolve().parents[1]


# --- the registry -------------------------------------------------------------------------------------


@dataclass
class ToyConfig:
    model: str
    output_dir: str
    beta: float = 0.1
    train: TrainSettings = field(default_factory=TrainSettings)


def _add_stage(monkeypatch: pytest.MonkeyPatch, spec: StageSpec) -> None:
    stages()  # discover the built-in stages first
    monkeypatch.setitem(STAGES._entries, spec.name, spec)
    monkeypatch.setitem(STAGES._help, spec.name, spec.help)


def _regime(tmp_path: Path) -> dict:
    data = yaml.safe_load((ROOT / "examples" / "train_regime.yaml").read_text(encoding="utf-8"))
    for sec in ("pretrain", "sft", "reward", "judge", "rejection"):
        data[sec]["output_dir"] = str(tmp_path / sec)
    return {k: v for k, v in data.items() if k not in ("skip_done", "evaluate")}


def test_built_in_stages_in_regime_order():
    assert [s.name for s in stages()] == ["pretrain", "sft", "reward", "judge", "rejection"]
    assert [s.name for s in stages() if s.required] == ["pretrain", "sft", "reward", "rejection"]
    assert get_stage("judge").run is get_stage("reward").run and get_stage("judge").alone
    with pytest.raises(KeyError, match="Did you mean 'reward'"):
        get_stage("rewad")


def test_help_lists_every_stage_without_importing_torch_or_transformers():
    code = ("import sys\nfrom chimed_eval.training.cli import build_parser\ntry:\n    build_parser().parse_args(['--help'])\n"
            "except SystemExit:\n    pass\nprint([m for m in ('torch', 'transformers', 'trl') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip().endswith("[]")
    for name in ("pretrain", "sft", "reward", "judge", "rejection", "full"):
        assert name in out


def test_a_new_stage_is_one_registration(tmp_path, monkeypatch):
    from chimed_eval.training import cli
    from chimed_eval.training.full import plan, run_full

    ran: list[tuple[str, Any]] = []
    _add_stage(monkeypatch, StageSpec("toy", "a DPO-like stage after sft", ToyConfig,
                                      lambda cfg: ran.append(("toy", cfg)) or {"toy": cfg.beta},
                                      order=25, inputs=(("model", "sft"),)))
    assert "toy" in cli.build_parser().format_help()
    # from its own file, or from a file with a toy: section
    assert cli.run_stage("toy", {"model": "m", "output_dir": str(tmp_path / "t"), "beta": 0.5}) == {"toy": 0.5}
    assert cli.run_stage("toy", {"toy": {"model": "m", "output_dir": "o"}}) == {"toy": 0.1}
    with pytest.raises(ConfigError, match=r"unknown key\(s\) bta \(did you mean 'beta'\?\)"):
        cli.run_stage("toy", {"model": "m", "output_dir": "o", "bta": 1})
    # in a full file: its section is known, its model is the sft stage's output, it runs after sft
    data = {**_regime(tmp_path), "toy": {"output_dir": str(tmp_path / "toy")}}
    assert plan(data)["toy"].model == str(tmp_path / "sft")
    for spec in stages():
        if spec.name != "toy":
            monkeypatch.setitem(STAGES._entries, spec.name,
                                dataclasses.replace(spec, run=lambda cfg, n=spec.name: ran.append((n, cfg)) or {}))
    ran.clear()
    run_full(data)
    assert [n for n, _ in ran] == ["pretrain", "sft", "toy", "reward", "judge", "rejection"]
    # without it the regime is the built-in one; an unknown section is refused
    with pytest.raises(ConfigError, match="unknown section"):
        plan({**_regime(tmp_path), "dpo": {}})


# --- TrainingArguments fields pass through ------------------------------------------------------------


def test_train_settings_take_any_training_arguments_field():
    from transformers import TrainingArguments

    t = from_dict(TrainSettings, {"max_steps": 3, "neftune_noise_alpha": 5, "adam_beta2": 0.95,
                                  "optim": "adamw_torch", "dataloader_num_workers": 1}, "sft.train")
    assert t.trainer_args == {"neftune_noise_alpha": 5.0, "adam_beta2": 0.95, "optim": "adamw_torch",
                              "dataloader_num_workers": 1}
    kw = training_kwargs(dataclasses.replace(t, precision="fp32", use_cpu=True), "out")
    assert kw["neftune_noise_alpha"] == 5.0 and kw["dataloader_num_workers"] == 1 and kw["max_steps"] == 3
    args = TrainingArguments(**kw)
    assert args.adam_beta2 == 0.95 and args.neftune_noise_alpha == 5.0


@pytest.mark.parametrize("train,msg", [
    ({"learning_rat": 1e-4}, r"unknown key\(s\) learning_rat \(did you mean 'learning_rate'"),
    ({"neftune_noise_alpa": 5}, r"did you mean 'neftune_noise_alpha'"),
    ({"per_device_train_batch_size": 8}, r"sft\.train\.per_device_train_batch_size: set train\.batch_size instead"),
    ({"bf16": True}, "set train.precision instead"),
    ({"neftune_noise_alpha": "much"}, r"sft\.train\.neftune_noise_alpha: expected float"),
    ({"trainer_args": {"not_a_field": 1}}, "not a transformers TrainingArguments field"),
])
def test_unknown_or_translated_training_settings_are_refused(train, msg):
    from chimed_eval.training.sft import SFTStageConfig

    with pytest.raises(ConfigError, match=msg):
        from_dict(SFTStageConfig, {"model": "m", "output_dir": "o", "train": train}, "sft")


# --- no test item of any registered task in training ----------------------------------------------------

MEDQA_Q = "男，45岁。反复上腹痛3年，空腹时加重，进食后缓解。最可能的诊断是"
MEDQA_OPTIONS = ("胃溃疡", "十二指肠溃疡", "慢性胃炎", "胃癌")
CMMLU_Q = "脾之华在"  # shorter than MIN_IDENTIFYING_CHARS: identified with its options only
CMMLU_OPTIONS = ("肾阴虚而肝阳亢", "肾阴虚而相火动", "心阴虚而心阳亢", "肾阴虚而心火旺")


@pytest.fixture()
def planted_data(tmp_path, monkeypatch):
    """A data folder in the shared layout with one MedQA item and one CMMLU item per subject."""
    from chimed_eval.training.overlap import clear_test_caches
    from chimed_eval.tasks.exams import CMMLU_MEDICAL

    root = tmp_path / "data"
    (root / "medqa_mcmle").mkdir(parents=True)
    opts = "\n".join(f"({'ABCD'[i]}) {o}." for i, o in enumerate(MEDQA_OPTIONS))
    (root / "medqa_mcmle" / "test.jsonl").write_text(
        json.dumps({"question": MEDQA_Q, "option": opts, "anwer": "(B)"}, ensure_ascii=False) + "\n", encoding="utf-8")
    (root / "cmmlu" / "test").mkdir(parents=True)
    for i, subj in enumerate(CMMLU_MEDICAL):
        q = CMMLU_Q if i == 0 else f"{subj}的第一道题是哪一个选项呢"
        (root / "cmmlu" / "test" / f"{subj}.csv").write_text(
            ",Question,A,B,C,D,Answer\n0," + q + "," + ",".join(CMMLU_OPTIONS) + ",D\n", encoding="utf-8")
    monkeypatch.setenv("CHIMED_EVAL_DATA", str(root))
    clear_test_caches()
    yield root
    clear_test_caches()


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_planted_medqa_and_cmmlu_items_are_refused(planted_data, tmp_path):
    from chimed_eval.training.data import load_source
    from chimed_eval.training.config import Source
    from chimed_eval.training.overlap import check_no_eval_overlap, eval_overlap, record_texts

    medqa_prompt = MEDQA_Q + "\n" + "\n".join(f"{'ABCD'[i]}. {o}" for i, o in enumerate(MEDQA_OPTIONS))
    cmmlu_prompt = CMMLU_Q + "\nA. " + "\nB. ".join(CMMLU_OPTIONS)
    sft = _jsonl(tmp_path / "sft.jsonl", [{"prompt": "头痛怎么办？", "completion": "多休息，必要时就医。"},
                                          {"prompt": medqa_prompt, "completion": "B. 十二指肠溃疡"},
                                          {"prompt": cmmlu_prompt, "completion": "D"}])
    chats = load_source(Source(path=str(sft)), "chat")
    assert eval_overlap(record_texts(chats)) == {"cmmlu-medical": 1, "cmmlu-medical-paper": 1, "medqa-mcmle": 1}
    with pytest.raises(ConfigError, match="medqa-mcmle"):
        check_no_eval_overlap(chats, "sft train data")
    # a pre-training document: the question on its first line, or the whole item on one line
    docs = _jsonl(tmp_path / "pretrain.jsonl", [{"text": f"{MEDQA_Q}\n答案：十二指肠溃疡"},
                                                {"text": f"{CMMLU_Q} A. " + " B. ".join(CMMLU_OPTIONS)}])
    texts = load_source(Source(path=str(docs)), "text")
    # counted per text: the first document's first line; the second document, also its (only) line
    assert eval_overlap(record_texts(texts)) == {"cmmlu-medical": 2, "cmmlu-medical-paper": 2, "medqa-mcmle": 1}
    # the short CMMLU question alone, or with other options, identifies nothing; nor does an option alone
    assert eval_overlap([CMMLU_Q, CMMLU_Q + "\nA. 甲\nB. 乙", "十二指肠溃疡", "肾阴虚而心火旺"]) == {}
    # allowed tasks are not checked; tasks without data are named as skipped
    check = check_no_eval_overlap(chats[:1] + chats[2:], "sft", allow=["cmmlu-medical", "cmmlu-medical-paper"])
    assert check.checked == ("medqa-mcmle",) and check.allowed == ("cmmlu-medical", "cmmlu-medical-paper")
    assert {"cmd-qa", "mc-dialogue", "safetybench-zh", "ceval-medical", "ccks2019-ner"} <= set(check.skipped)


def test_a_planted_item_stops_the_pretrain_stage(planted_data, tmp_path, capsys):
    from chimed_eval.training.cli import main

    docs = _jsonl(tmp_path / "docs.jsonl", [{"text": "正常的医学文本。" * 20}, {"text": MEDQA_Q}])
    cfg = tmp_path / "pretrain.yaml"
    cfg.write_text(yaml.safe_dump({"model": "smollm2-135m", "output_dir": str(tmp_path / "out"),
                                   "sources": [{"path": str(docs)}], "train": {"precision": "fp32", "use_cpu": True}},
                                  allow_unicode=True), encoding="utf-8")
    assert main(["pretrain", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "pretrain train data: training data contains evaluation test items ({'medqa-mcmle': 2})" in err  # doc, line


def test_every_real_task_is_asked_for_its_test_items(shared_data, monkeypatch):
    """On the real data the check covers the exam tasks, C-Eval and CCKS too."""
    from chimed_eval.tasks import get_task
    from chimed_eval.training.overlap import eval_overlap, test_texts

    monkeypatch.setenv("CHIMED_EVAL_DATA", str(shared_data))
    tt = test_texts(str(shared_data.resolve()))
    assert {"medqa-mcmle", "cmmlu-medical", "ceval-medical", "ccks2019-ner", "cmd-qa", "mc-dialogue",
            "safetybench-zh"} <= set(tt.tasks)
    for task in ("ceval-medical-paper", "ccks2019-ner-paper", "medqa-mcmle"):
        s = get_task(task).load(shared_data).samples[-1]
        doc = s.input + ("\n" + "\n".join(f"{'ABCD'[i]}. {c}" for i, c in enumerate(s.choices)) if s.choices else "")
        assert task in eval_overlap([doc], root=str(shared_data.resolve())), task
