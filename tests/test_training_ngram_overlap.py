"""chimed-train's n-gram check beside the exact one: a test item copied with its punctuation
changed and a greeting in front passes the exact check but shares 13-grams (lm-eval's rule), so
its record is dropped (``train.eval_ngram_overlap: drop``, the default) or refuses the stage
(``refuse``), unless its task is under allow_eval_overlap; the stage report records what was
checked and dropped; the test side is indexed once per process."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from chimed_eval.core.errors import ConfigError

MEDQA_Q = "男，45岁。反复上腹痛3年，空腹时加重，进食后缓解。最可能的诊断是"
OPTIONS = ("胃溃疡", "十二指肠溃疡", "慢性胃炎", "胃癌")
# the question reformatted: other punctuation and spaces, a greeting in front (not an exact copy)
COPY = "医生你好！男 45 岁, 反复上腹痛 3 年; 空腹时加重, 进食后缓解... 最可能的诊断是?"


@pytest.fixture()
def planted(tmp_path, monkeypatch):
    """A data folder with one MedQA test item (every other task's data is missing)."""
    from chimed_eval.training.overlap import clear_test_caches

    root = tmp_path / "data"
    (root / "medqa_mcmle").mkdir(parents=True)
    opts = "\n".join(f"({'ABCD'[i]}) {o}." for i, o in enumerate(OPTIONS))
    (root / "medqa_mcmle" / "test.jsonl").write_text(
        json.dumps({"question": MEDQA_Q, "option": opts, "anwer": "(B)"}, ensure_ascii=False) + "\n", encoding="utf-8")
    monkeypatch.setenv("CHIMED_EVAL_DATA", str(root))
    clear_test_caches()
    yield root
    clear_test_caches()


def _chats(*pairs):
    from chimed_eval.training.data import Chat

    return [Chat((("user", q), ("assistant", a)), f"sft.jsonl:{i + 1}") for i, (q, a) in enumerate(pairs)]


def test_a_reformatted_copy_passes_the_exact_check_and_is_refused(planted):
    from chimed_eval.training.overlap import check_no_eval_ngram_overlap, eval_overlap, record_texts

    recs = _chats(("头痛怎么办？", "多休息，必要时就医。"), (COPY, "十二指肠溃疡"))
    assert eval_overlap(record_texts(recs)) == {}  # not an exact copy
    with pytest.raises(ConfigError) as e:
        check_no_eval_ngram_overlap(recs, "sft train data")
    msg = str(e.value)
    assert msg.startswith("sft train data: training data shares 13-grams with evaluation test items "
                          "({'medqa-mcmle': 1} items per task")
    assert "medqa-mcmle item test-1" in msg and "(sft.jsonl:2)" in msg and "allow_eval_overlap" in msg
    # 12 tokens of the question are not enough
    twelve = "男 45 岁 反复上腹痛 3 年 空腹"  # 男 45 岁 反 复 上 腹 痛 3 年 空 腹
    assert check_no_eval_ngram_overlap(_chats((twelve, "好")), "x").contaminated == {}


def test_allowed_tasks_are_counted_not_refused(planted):
    from chimed_eval.training.overlap import check_no_eval_ngram_overlap

    check = check_no_eval_ngram_overlap(_chats((COPY, "B")), "sft", allow=["medqa-mcmle"])
    assert check.contaminated == {"medqa-mcmle": 1} and check.checked == () and check.allowed == ("medqa-mcmle",)
    d = check.as_dict()
    assert d["n"] == 13 and d["tokenisation"] == "nfkc-lower/cjk-char/alnum-run@1" and d["records"] == 1
    assert {"cmd-qa", "mc-dialogue", "cmmlu-medical"} <= set(d["skipped"])
    clean = check_no_eval_ngram_overlap(_chats(("头痛怎么办？", "多休息，必要时就医。")), "sft")
    assert clean.contaminated == {} and clean.checked == ("medqa-mcmle",) and clean.documents == 2


def test_every_kind_of_record_is_checked(planted):
    from chimed_eval.training.data import Pair, PromptItem
    from chimed_eval.training.overlap import check_no_eval_ngram_overlap, record_documents

    recs = ["正常的医学文本。", Pair("问", "好的回答", "坏的回答", origin="p:1"), PromptItem("x", "问题", "参考", ("外部",))]
    assert [t for _, t in record_documents(recs)] == ["正常的医学文本。", "问", "好的回答", "坏的回答", "问题", "参考", "外部"]
    for leak in (COPY, Pair("问", COPY, "坏"), PromptItem("x", "问题", None, (COPY,))):
        with pytest.raises(ConfigError, match="medqa-mcmle"):
            check_no_eval_ngram_overlap([leak], "stage")


def test_the_test_side_is_indexed_once_per_process(planted):
    from chimed_eval.training.overlap import _data_root, test_ngram_index

    a = test_ngram_index(_data_root(), 13)
    assert test_ngram_index(_data_root(), 13) is a and a[1] == ("medqa-mcmle",) and len(a[0]) > 0


@dataclass
class _Cfg:
    name: str = "probe"


def test_the_stage_report_records_the_ngram_check(planted, tmp_path):
    from chimed_eval.training.config import Source, TrainSettings
    from chimed_eval.training.stage import Stage

    f = tmp_path / "sft.jsonl"
    f.write_text(json.dumps({"prompt": "头痛怎么办？", "completion": "多休息。"}, ensure_ascii=False) + "\n"
                 + json.dumps({"prompt": COPY, "completion": "B"}, ensure_ascii=False) + "\n", encoding="utf-8")
    strict = Stage("sft", _Cfg(), str(tmp_path / "o1"), TrainSettings(precision="fp32", use_cpu=True,
                                                                    eval_ngram_overlap="refuse"))
    with pytest.raises(ConfigError, match=r"sft train data: training data shares 13-grams.*sft\.jsonl:2"):
        strict.records([Source(path=str(f))], "chat", None, [])
    # the default drops the record that shares a 13-gram, keeps the other, and says so
    st = Stage("sft", _Cfg(), str(tmp_path / "o2"), TrainSettings(precision="fp32", use_cpu=True))
    recs = st.records([Source(path=str(f))], "chat", None, [])
    assert [r.messages[0][1] for r in recs] == ["头痛怎么办？"]
    rep = st.report["data"]["eval_ngram_overlap"]["train"]
    assert rep["policy"] == "drop" and rep["records_dropped"] == 1 and rep["records"] == 2
    assert rep["contaminated_items"] == {"medqa-mcmle": 1}
    # an allowed task's overlap is counted and nothing is dropped
    st = Stage("sft", _Cfg(), str(tmp_path / "o3"), TrainSettings(precision="fp32", use_cpu=True))
    recs = st.records([Source(path=str(f))], "chat", None, ["medqa-mcmle"])
    assert len(recs) == 2
    rep = st.report["data"]["eval_ngram_overlap"]["train"]
    assert rep["contaminated_items"] == {"medqa-mcmle": 1} and rep["allowed"] == ["medqa-mcmle"] and rep["n"] == 13
    assert rep["records_dropped"] == 0


def test_a_bad_policy_fails_before_any_data_is_read(tmp_path):
    from chimed_eval.training.config import TrainSettings
    from chimed_eval.training.stage import Stage

    with pytest.raises(ConfigError, match="train.eval_ngram_overlap 'warn': choose drop or refuse"):
        Stage("sft", _Cfg(), str(tmp_path / "o"), TrainSettings(precision="fp32", use_cpu=True, eval_ngram_overlap="warn"))


def test_only_the_contaminating_records_are_dropped(planted):
    from chimed_eval.training.data import Pair
    from chimed_eval.training.overlap import decontaminate

    recs = [*_chats(("头痛怎么办？", "多休息。"), ("胃痛", COPY)), Pair("问", "好", COPY, origin="p:1"), "正常的医学文本。"]
    kept, check = decontaminate(recs, "x")
    assert kept == [recs[0], recs[3]] and check.dropped == 2 and check.policy == "drop"
    kept, check = decontaminate(recs, "x", allow=["medqa-mcmle"])
    assert kept == recs and check.dropped == 0


def test_a_reformatted_copy_stops_the_pretrain_stage(planted, tmp_path, capsys):
    from chimed_eval.training.cli import main

    docs = tmp_path / "docs.jsonl"
    docs.write_text(json.dumps({"text": "正常的医学文本。" * 20}, ensure_ascii=False) + "\n"
                    + json.dumps({"text": "病例讨论\n" + COPY}, ensure_ascii=False) + "\n", encoding="utf-8")
    cfg = tmp_path / "pretrain.yaml"
    cfg.write_text(yaml.safe_dump({"model": "smollm2-135m", "output_dir": str(tmp_path / "out"),
                                   "sources": [{"path": str(docs)}],
                                   "train": {"precision": "fp32", "use_cpu": True, "eval_ngram_overlap": "refuse"}},
                                  allow_unicode=True), encoding="utf-8")
    assert main(["pretrain", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "pretrain train data: training data shares 13-grams with evaluation test items ({'medqa-mcmle': 1}" in err
    assert not (Path(tmp_path / "out") / "metrics.json").exists()
