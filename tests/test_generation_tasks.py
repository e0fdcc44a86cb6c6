"""Open QA and dialogue tasks: loaders (real files when present, synthetic ones always), the fake
backend end to end, decoding settings, empty/truncated generations, re-scoring."""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from chimed_eval.core.errors import ConfigError, DataError, MissingDataError
from chimed_eval.metrics import text as T
from chimed_eval.engine.runner import RunSettings, item_seed
from chimed_eval.task.options import TaskRunOptions
from chimed_eval.tasks import get_task
from chimed_eval.tasks.generation import CMD_FILE, detect_encoding, load_chimed_qa, load_cmd_qa, load_covid_zh, load_hetmc

SCHEMA = Path(__file__).resolve().parents[1] / "chimed_eval" / "schema" / "results.schema.json"
GEN_TASKS = ("chimed-qa", "cmd-qa", "mc-dialogue", "covid-dialogue-zh")


# --- synthetic data ---------------------------------------------------------------------------------

CMD_ROWS = [
    ("心血管科", "高血压能吃党参吗", "我有高血压，可以吃党参吗？", "高血压病人可以口服党参，党参有降血压的作用。"),
    ("消化科", "胃痛怎么办", "饭后胃痛三天了，怎么办？", "建议做胃镜检查，先服用抑酸药物观察。"),
    ("肝病科", "乙肝能治好吗", "无", "乙肝目前难以彻底治愈，但规范抗病毒治疗可以控制病情。"),
    ("消化科", "胃痛怎么办", "饭后胃痛三天了，怎么办？", "建议做胃镜检查，先服用抑酸药物观察。"),  # duplicate pair
    ("神经科", "头痛", "经常头痛，晚上睡不好，需要吃什么药？", "可以先查头颅核磁，睡前避免使用手机。"),
]
HETMC = (
    "id\t00001\tapartment\t内科\tdisease\t胃炎\n"
    "P\t胃胀半年\t1\n"
    "P\t吃药没用\t0\n"
    "D\t你好，做过胃镜吗？\t2\n"
    "P\t做过，慢性胃炎\t0\n"
    "D\t建议服用抑酸药物\t0\n"
    "D\t注意规律饮食\t0\n"
    "P\t好的谢谢\t0\n"
    "SUM1\t胃胀半年\n"
    "SUM2.0\t建议服用抑酸药物\n"
    "\n"
    "id\t00002\tapartment\t儿科\tdisease\t发热\n"
    "P\t孩子发烧三十八度五\t0\n"
    "D\t精神状态怎么样？\t0\n"
    "P\t精神还可以\t0\n"
    "D\t先物理降温，多喝水，观察一天\t0\n"
    "SUM1\t发热\n"
)
COVID = [
    ["病人：咳嗽两天了，有点发热，需要做核酸吗？", "医生：建议去发热门诊做核酸检测。", "病人：好的，需要隔离吗？",
     "医生：结果出来之前居家隔离，注意观察体温。"],
    ["病人：喉咙痛，没有发热。", "医生：考虑咽炎可能性大，多喝温水，观察症状变化。"],
]


def write_data(root: Path) -> Path:
    (root / "cmd").mkdir(parents=True)
    lines = ["department,title,ask,answer"] + [",".join(r) for r in CMD_ROWS]
    (root / "cmd" / CMD_FILE).write_bytes(("\r\n".join(lines) + "\r\n").encode("gb18030"))
    (root / "dialogue" / "hetmc").mkdir(parents=True)
    (root / "dialogue" / "hetmc" / "test.dialog").write_text(HETMC, encoding="utf-8")
    (root / "dialogue" / "covid_zh").mkdir(parents=True)
    (root / "dialogue" / "covid_zh" / "test_data.json").write_text(json.dumps(COVID, ensure_ascii=False), encoding="utf-8")
    (root / "chimed").mkdir()
    recs = [{"question": "糖尿病人能吃水果吗？", "answer_1": "血糖控制平稳时可以少量吃低糖水果。",
             "answer_2": "可以在两餐之间适量食用，注意监测血糖。"},
            {"id": "q2", "question": "感冒需要吃抗生素吗？", "answer_1": "普通感冒多为病毒感染，一般不需要抗生素。", "answer_2": ""}]
    (root / "chimed" / "test.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs),
                                              encoding="utf-8")
    return root


@pytest.fixture()
def data(tmp_path) -> Path:
    return write_data(tmp_path / "data")


def run_cli(*argv: str) -> int:
    return main(["run", "--no-progress", "--backend", "fake", *argv])


def load(out: Path) -> dict:
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


def metrics(res: dict, task: str) -> dict[str, dict]:
    return {m["name"]: m for m in res["tasks"][task]["metrics"]}


def records(out: Path, task: str) -> list[dict]:
    return [json.loads(x) for x in (out / "samples" / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()]


def validate(res: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(res, json.loads(SCHEMA.read_text()))


# --- encodings and loaders ------------------------------------------------------------------------


def test_detect_encoding_and_a_clear_error(tmp_path):
    gb = tmp_path / "gb.csv"
    gb.write_bytes("问题,答案\n发烧,多喝水\n".encode("gb18030"))
    assert detect_encoding(gb) == "gb18030"
    u = tmp_path / "u.csv"
    u.write_bytes("\ufeff问题\n".encode("utf-8"))
    assert detect_encoding(u) == "utf-8"
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"ok\n\xff\xff\xff\n")
    with pytest.raises(DataError) as e:
        detect_encoding(bad)
    assert "bad.csv" in str(e.value) and "utf-8" in str(e.value) and "gb18030" in str(e.value)


def test_cmd_split_is_seeded_deduplicated_and_stable(data):
    a, b = load_cmd_qa(data), load_cmd_qa(data)
    assert [s.id for s in a.samples] == [s.id for s in b.samples]
    assert len(a.samples) == 4  # the repeated (question, answer) pair is dropped
    by_q = {s.input: s for s in a.samples}
    assert "乙肝能治好吗" in by_q  # ask "无" -> the title
    assert all(s.id.startswith("cmd-") and len(s.id) == 16 for s in a.samples)
    assert [s.id for s in load_cmd_qa(data, test_size=2).samples] == [s.id for s in a.samples[:2]]
    assert a.samples == sorted(a.samples, key=lambda s: s.id)  # key order (ids are key prefixes)


def test_hetmc_merges_runs_and_targets_the_last_doctor_turn(data):
    d = load_hetmc(data)
    assert [s.id for s in d.samples] == ["hetmc-test-00001", "hetmc-test-00002"]
    s = d.samples[0]
    assert s.target == "建议服用抑酸药物\n注意规律饮食"
    assert s.input == "[human]:胃胀半年\n吃药没用\n[bot]:你好，做过胃镜吗？\n[human]:做过，慢性胃炎\n[bot]:"
    assert get_task("mc-dialogue").render(s, TaskRunOptions("paper")) == (s.input, ())


def test_covid_strips_speaker_prefixes(data):
    d = load_covid_zh(data)
    assert [s.id for s in d.samples] == ["covid-test-000", "covid-test-001"]
    assert d.samples[1].input == "[human]:喉咙痛，没有发热。\n[bot]:"
    assert d.samples[1].target == "考虑咽炎可能性大，多喝温水，观察症状变化。"


def test_bad_dialogue_lines_name_file_and_line(tmp_path):
    root = tmp_path / "d"
    (root / "dialogue" / "hetmc").mkdir(parents=True)
    (root / "dialogue" / "hetmc" / "test.dialog").write_text("id\t1\nX\t什么\t0\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"test.dialog:2"):
        load_hetmc(root)


def test_chimed_one_item_per_reference_and_the_authors_form(data, tmp_path):
    d = load_chimed_qa(data)
    assert [s.id for s in d.samples] == ["chimed-1-1", "chimed-1-2", "chimed-q2-1"]
    root = tmp_path / "other"
    (root / "chimed").mkdir(parents=True)
    (root / "chimed" / "test.jsonl").write_text(json.dumps({"prompt": ["问？"], "output": ["答。"]}, ensure_ascii=False) + "\n",
                                                encoding="utf-8")
    assert [(s.input, s.target) for s in load_chimed_qa(root).samples] == [("问？", "答。")]
    (root / "chimed" / "test.jsonl").write_text('{"question": "问？", "answer_1": ""}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"test.jsonl:1"):
        load_chimed_qa(root)
    with pytest.raises(MissingDataError, match="no public copy"):
        load_chimed_qa(tmp_path / "nothing")


def test_real_files(shared_data):
    if not (shared_data / "cmd").is_dir() or not (shared_data / "dialogue").is_dir():
        pytest.skip(f"cmd/ or dialogue/ not in {shared_data}")
    path = shared_data / "cmd" / CMD_FILE
    assert detect_encoding(path) == "gb18030"
    cmd = load_cmd_qa(shared_data)
    assert len(cmd.samples) == 500 and len({s.id for s in cmd.samples}) == 500
    assert cmd.samples[0].id == load_cmd_qa(shared_data).samples[0].id
    assert len({s.subject for s in cmd.samples[:100]}) >= 5  # the first 100 mix departments
    het = load_hetmc(shared_data)
    assert len(het.samples) == 18
    assert het.samples[0].id == "hetmc-test-00009" and het.samples[0].input.startswith("[human]:胆汁反流性胃炎")
    assert all(s.input.endswith("[bot]:") and s.target for s in het.samples)
    assert len(load_covid_zh(shared_data).samples) == 109


# --- end to end on the fake backend -----------------------------------------------------------------


def test_oracle_scores_perfect_bleu_and_rouge_and_score_reproduces(data, tmp_path):
    out = tmp_path / "o"
    assert run_cli("--model", "oracle", "--tasks", ",".join(GEN_TASKS), "--output", str(out), "--data-dir", str(data)) == 0
    res = load(out)
    validate(res)
    for task in GEN_TASKS:
        ms = metrics(res, task)
        for name, m in ms.items():
            if name.startswith(("empty_generation_", "truncated_generation_")) or name.endswith("_undefined_count"):
                assert m["value"] == 0  # no empty, cut or one-token reference in these items
                continue
            assert m["value"] == pytest.approx(100.0), (task, name)
            assert m["protocol"] in ("paper", "standard") and m["tokenization"], (task, name)
        assert res["settings"]["scoring"][task] == "generate"
    assert res["tasks"]["chimed-qa"]["n"] == 3 and res["tasks"]["cmd-qa"]["n"] == 4
    rec = records(out, "mc-dialogue")[0]
    assert rec["gold"] == rec["generation"] and rec["prompt"].endswith("[bot]:")
    assert rec["extra"]["empty"] is False and rec["extra"]["truncated"] is False
    before = res["tasks"]
    assert main(["score", str(out)]) == 0
    assert load(out)["tasks"] == before


def test_figures_equal_the_reference_packages_called_directly(data, tmp_path):
    out = tmp_path / "o"
    run_cli("--model", "fixed:建议多喝水，注意休息，必要时到医院检查。", "--tasks", "cmd-qa,covid-dialogue-zh",
            "--output", str(out), "--data-dir", str(data))
    res = load(out)
    bleu = pytest.importorskip("nltk.translate.bleu_score")
    Rouge = pytest.importorskip("rouge").Rouge
    sacrebleu = pytest.importorskip("sacrebleu")
    for task in ("cmd-qa", "covid-dialogue-zh"):
        recs = records(out, task)
        hyps, refs = [r["generation"] for r in recs], [r["gold"] for r in recs]
        ph, pr = [T.chimed_char_pad(h) for h in hyps], [T.chimed_char_pad(r) for r in refs]
        ms = metrics(res, task)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            script = bleu.corpus_bleu([[r] for r in pr], ph, weights=[(0.5, 0.5), (0.333, 0.333, 0.334)])
            b1 = bleu.corpus_bleu([[r] for r in pr], ph, weights=(1.0,))
        assert math.isclose(ms["paper_bleu1_cum"]["value"], 100 * b1, abs_tol=1e-7)
        assert math.isclose(ms["paper_bleu2_cum"]["value"], 100 * script[0], abs_tol=1e-7)  # the script's first value
        assert math.isclose(ms["paper_script_bleu3_cum"]["value"], 100 * script[1], abs_tol=1e-7)
        rg = Rouge().get_scores(ph, pr, avg=True)
        for key, name in (("rouge-1", "paper_rouge1"), ("rouge-2", "paper_rouge2"), ("rouge-l", "paper_rougeL")):
            assert math.isclose(ms[name]["value"], 100 * rg[key]["f"], abs_tol=1e-7)
        for k in (1, 2, 4):
            expected = sacrebleu.BLEU(tokenize="zh", max_ngram_order=k).corpus_score(hyps, [refs]).score
            assert math.isclose(ms[f"sacrebleu{k}_cum"]["value"], expected, abs_tol=1e-7)
        assert ms["paper_bleu1_cum"]["averaging"] == "corpus" and ms["rougeL_jieba"]["tokenization"] == "jieba"
        assert ms["paper_bleu1_cum"]["ci_low"] <= ms["paper_bleu1_cum"]["value"] <= ms["paper_bleu1_cum"]["ci_high"]


def test_empty_generations_are_scored_zero_counted_and_kept(data, tmp_path):
    out = tmp_path / "o"
    run_cli("--model", "fixed:   ", "--tasks", "mc-dialogue", "--output", str(out), "--data-dir", str(data))
    res = load(out)
    ms = metrics(res, "mc-dialogue")
    assert ms["empty_generation_count"]["value"] == 2 and res["tasks"]["mc-dialogue"]["n"] == 2
    assert ms["empty_generation_rate"]["value"] == 100.0
    assert res["tasks"]["mc-dialogue"]["extraction_failures"] == 2
    assert all(m["value"] == 0 for n, m in ms.items() if not n.startswith(("empty_generation_", "truncated_generation_")))
    assert all(r["extra"]["empty"] and r["generation"] == "   " for r in records(out, "mc-dialogue"))


def test_truncation_flag_and_max_new_tokens_override_are_recorded(data, tmp_path):
    out = tmp_path / "o"
    run_cli("--model", "fixed:这是一段很长的回答", "--tasks", "covid-dialogue-zh", "--max-new-tokens", "4",
            "--output", str(out), "--data-dir", str(data))
    res = load(out)
    assert metrics(res, "covid-dialogue-zh")["truncated_generation_count"]["value"] == 2
    assert metrics(res, "covid-dialogue-zh")["truncated_generation_rate"]["value"] == 100.0
    assert res["settings"]["max_new_tokens"] == 4
    assert res["settings"]["generation"]["covid-dialogue-zh"]["max_new_tokens"] == 4
    assert all(r["extra"]["max_new_tokens"] == 4 and r["extra"]["truncated"] for r in records(out, "covid-dialogue-zh"))


def test_paper_sampling_is_recorded_seeded_and_repeats(data, tmp_path):
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        run_cli("--model", "oracle", "--tasks", "cmd-qa,mc-dialogue", "--decoding", "paper-sampling", "--seed", "7",
                "--output", str(out), "--data-dir", str(data))
    res = load(outs[0])
    validate(res)
    assert res["settings"]["decoding"] == "paper-sampling"
    gen = res["settings"]["generation"]["cmd-qa"]
    assert (gen["decoding"], gen["temperature"], gen["top_p"], gen["max_new_tokens"]) == ("paper-sampling", 1.0, 0.85, 512)
    for task in ("cmd-qa", "mc-dialogue"):
        a, b = records(outs[0], task), records(outs[1], task)
        assert a == b
        for r in a:
            assert r["extra"]["decoding"]["seed"] == item_seed(7, r["id"])
            assert r["extra"]["decoding"]["top_p"] == 0.85
    # a different setting may not resume into the same directory
    assert run_cli("--model", "oracle", "--tasks", "cmd-qa", "--output", str(outs[0]), "--data-dir", str(data),
                   "--seed", "7") == 2


def test_greedy_is_the_default_and_old_fingerprints_still_match():
    t = get_task("cmd-qa")
    g = t.generation_config(TaskRunOptions("paper"))
    assert g.greedy and g.max_new_tokens == 512 and g.stop == ("[human]:", "[bot]:")
    fp = RunSettings(model="m").fingerprint()
    assert "max_new_tokens" not in fp and "decoding" not in fp
    assert RunSettings(model="m", decoding="paper-sampling").fingerprint()["decoding"] == "paper-sampling"


def test_chat_variant_renders_messages(data, tmp_path):
    out = tmp_path / "o"
    run_cli("--model", "oracle", "--tasks", "mc-dialogue", "--variant", "chat", "--output", str(out), "--data-dir", str(data))
    rec = records(out, "mc-dialogue")[0]
    assert rec["prompt"].startswith("<|im_start|>user\n胃胀半年\n吃药没用<|im_end|>\n<|im_start|>assistant\n你好")
    assert rec["prompt"].endswith("<|im_start|>assistant\n")
    t = get_task("cmd-qa")
    with pytest.raises(ConfigError, match="chat template"):
        t.render(load_cmd_qa(data).samples[0], TaskRunOptions("chat"))


def test_missing_jieba_fails_before_the_model_with_an_install_hint(data, monkeypatch):
    monkeypatch.setitem(sys.modules, "jieba", None)
    t = get_task("cmd-qa")
    d = t.load(data)
    with pytest.raises(ConfigError, match=r"chimed-eval\[text\]"):
        t.build_requests(d, d.samples, TaskRunOptions("paper", 0, 1))


def test_shots_are_refused(data):
    t = get_task("mc-dialogue")
    d = t.load(data)
    with pytest.raises(ConfigError, match="0-shot"):
        t.build_requests(d, d.samples, TaskRunOptions("paper", 5, 1))
