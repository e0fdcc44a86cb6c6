"""NER tasks end to end on the fake backend: CCKS-2019 on the real files, the generic ``ner`` task
on BIO/JSONL files written here (via --task-args and a TOML --task-config), ChiMST's format,
malformed inputs, prompt truncation and re-scoring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from chimed_eval.core.errors import ConfigError, DataError
from chimed_eval.files.spans import read_bio, read_span_file, read_span_jsonl
from chimed_eval.task.options import TaskRunOptions
from conftest import write_exam_csv
from chimed_eval.tasks import get_task
from chimed_eval.tasks.ner import CCKS_TYPES, make_ner_task_from_args, spec_from_args

SCHEMA = Path(__file__).resolve().parents[1] / "chimed_eval" / "schema" / "results.schema.json"


def validate(results: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(results, json.loads(SCHEMA.read_text()))


def run(*argv: str) -> int:
    return main(["run", "--no-progress", *argv])


def results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


def metrics(res: dict, task: str) -> dict[str, float]:
    return {m["name"]: m["value"] for m in res["tasks"][task]["metrics"]}


def records(out: Path, task: str) -> list[dict]:
    return [json.loads(x) for x in (out / "samples" / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def ccks(shared_data) -> Path:
    if not (shared_data / "ccks2019").is_dir():
        pytest.skip(f"CCKS-2019 not found under {shared_data}")
    return shared_data


# --- CCKS-2019 on the real files ----------------------------------------------------------------


def test_ccks_loader_counts(ccks):
    full = get_task("ccks2019-ner").load(ccks)
    paper = get_task("ccks2019-ner-paper").load(ccks)
    assert len(full.samples) == 379 and len(paper.samples) == 200
    assert [s.id for s in paper.samples] == [s.id for s in full.samples[:200]]
    assert full.samples[0].id == "test-1"
    assert sum(len(s.metadata["spans"]) for s in full.samples) == 6002
    assert len(full.fewshot[None]) == 1000  # both training files
    assert set(full.files) == {"ccks2019/subtask1_test_set_with_answer.json", "ccks2019/subtask1_training_part1.txt",
                               "ccks2019/subtask1_training_part2.txt"}
    assert {t for s in full.samples for *_, t in s.metadata["spans"]} == set(CCKS_TYPES)


def test_ccks_oracle_scores_100_on_all_379_and_score_reproduces(ccks, tmp_path):
    out = tmp_path / "o"
    assert run("--backend", "fake", "--model", "oracle", "--tasks", "ccks2019-ner", "--output", str(out),
               "--data-dir", str(ccks)) == 0
    res = results(out)
    validate(res)
    t = res["tasks"]["ccks2019-ner"]
    assert t["n"] == 379 and t["shots"] == 5 and t["variant"] == "paper" and t["extraction_failures"] == 0
    m = metrics(res, "ccks2019-ner")
    for name in ("precision", "recall", "f1", "f1_multiset", "f1_macro"):
        assert m[name] == 100.0, name
    assert m["not_in_text_rate"] == 0 and m["truncated_prompt_rate"] == 0
    assert 19 < m["gold_repeat_rate"] < 21  # about a fifth of the gold mentions repeat within their record
    assert set(t["subjects"]) == set(CCKS_TYPES)
    rec = records(out, "ccks2019-ner")[0]
    assert rec["extra"]["shots_used"] == 5 and rec["prompt"].startswith("请找出下面医疗文本中的所有医学实体")
    assert rec["extracted"]["decisions"][0]["action"] == "kept"
    before = t["metrics"]
    assert main(["score", str(out)]) == 0
    assert results(out)["tasks"]["ccks2019-ner"]["metrics"] == before


def test_ccks_paper_json_variant_with_limit(ccks, tmp_path):
    out = tmp_path / "o"
    assert run("--backend", "fake", "--model", "oracle", "--tasks", "ccks2019-ner-paper", "--variant", "json",
               "--limit", "20", "--output", str(out), "--data-dir", str(ccks)) == 0
    res = results(out)
    assert res["tasks"]["ccks2019-ner-paper"]["n"] == 20
    assert metrics(res, "ccks2019-ner-paper")["f1"] == 100.0


def test_ccks_requests_share_a_prefix_and_cap_tokens(ccks):
    task = get_task("ccks2019-ner")
    data = task.load(ccks)
    reqs = task.build_requests(data, data.samples[:10], TaskRunOptions("paper", 5, seed=1))
    assert len({r.prefix for r in reqs}) == 1 and reqs[0].prefix.count("文本：") == 5
    for r, s in zip(reqs, data.samples):
        assert r.kind == "generate" and r.context.startswith(r.prefix) and r.context.endswith("实体：\n")
        assert r.generation.greedy and r.generation.stop == ("\n文本：", "\n\n\n")
        assert 64 <= r.generation.max_new_tokens <= 1024 and r.generation.max_new_tokens == max(64, len(s.input))
    other = task.build_requests(data, data.samples[:1], TaskRunOptions("paper", 5, seed=2))
    assert other[0].prefix != reqs[0].prefix  # the shots are seeded
    zero = task.build_requests(data, data.samples[:1], TaskRunOptions("paper", 0, seed=1))
    assert "文本：" not in zero[0].prefix


# --- the generic ner task on a user's BIO file --------------------------------------------------

BIO = """患 O
者 O
胃 B-疾病
癌 I-疾病
术 O
后 O
服 O
用 O
泰 B-药物
素 I-药物

阿 B-药物
司 I-药物
匹 I-药物
林 I-药物
治 O
疗 O
冠 B-疾病
心 I-疾病
病 I-疾病
"""

SHOTS = """口 O
服 O
华 B-药物
法 I-药物
林 I-药物

确 O
诊 O
肺 B-疾病
炎 I-疾病
"""


def _bio_files(tmp_path: Path) -> tuple[Path, Path]:
    test = tmp_path / "mine" / "test.bio"
    test.parent.mkdir(parents=True, exist_ok=True)
    test.write_text(BIO, encoding="utf-8")
    shots = tmp_path / "mine" / "shots.bio"
    shots.write_text(SHOTS, encoding="utf-8")
    return test, shots


def test_bio_file_through_task_args(tmp_path):
    test, shots = _bio_files(tmp_path)
    args = f"path={test},format=bio,types=疾病;药物,fewshot={shots},shots=2,aliases=病:疾病"
    out = tmp_path / "o"
    assert run("--backend", "fake", "--model", "oracle", "--tasks", "ner", "--task-args", args,
               "--output", str(out), "--data-dir", str(tmp_path / "nodata")) == 0
    res = results(out)
    validate(res)
    assert res["tasks"]["ner"]["n"] == 2 and res["tasks"]["ner"]["shots"] == 2
    assert metrics(res, "ner")["f1"] == 100.0


def test_bio_file_fixed_answer_scores_as_computed_by_hand(tmp_path):
    test, shots = _bio_files(tmp_path)
    out = tmp_path / "o"
    # each record: one true pair, one pair whose entity is not in its text
    assert run("--backend", "fake", "--model", "fixed:胃癌 疾病\n阿司匹林 药物", "--tasks", "ner", "--task-args",
               f"path={test},types=疾病;药物", "--output", str(out), "--shots", "0") == 0
    m = metrics(results(out), "ner")
    assert (m["precision"], m["recall"], m["f1"], m["not_in_text_rate"]) == (50.0, 50.0, 50.0, 50.0)
    rec = records(out, "ner")[0]
    assert rec["gold"] == [["胃癌", "疾病", 2, 4], ["泰素", "药物", 8, 10]]
    assert rec["prediction"] == [["胃癌", "疾病"], ["阿司匹林", "药物"]]
    assert "not_in_text" in rec["extracted"]["decisions"][1]["notes"]
    before = results(out)["tasks"]["ner"]["metrics"]
    assert main(["score", str(out)]) == 0  # no config needed: the records carry their inventory
    assert results(out)["tasks"]["ner"]["metrics"] == before


def test_bio_and_mcq_tasks_from_one_toml_config(tmp_path):
    _bio_files(tmp_path)
    write_exam_csv(tmp_path / "mine" / "exam.csv", 8)
    cfg = tmp_path / "mine" / "tasks.toml"
    cfg.write_text("""
[[tasks]]
type = "ner"
name = "my-ner"
path = "test.bio"
format = "bio"
types = ["疾病", "药物"]
aliases = { "药" = "药物" }
fewshot = "shots.bio"
shots = 2

[[tasks]]
name = "my-exam"
path = "exam.csv"
""", encoding="utf-8")
    out = tmp_path / "o"
    assert run("--backend", "fake", "--model", "oracle", "--tasks", "my-ner,my-exam", "--task-config", str(cfg),
               "--output", str(out), "--variant", "paper") == 0
    res = results(out)
    assert metrics(res, "my-ner")["f1"] == 100.0 and metrics(res, "my-exam")["acc"] == 100.0
    assert records(out, "my-ner")[0]["extra"]["shots_used"] == 2
    assert main(["score", str(out), "--task-config", str(cfg)]) == 0


def test_jsonl_file_json_variant(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"id": "a", "text": "口服华法林", "entities": [{"start": 2, "end": 5, "type": "药物"}]}\n'
                 '{"id": "b", "text": "确诊肺炎", "entities": [{"start": 2, "end": 4, "type": "疾病", "entity": "肺炎"}]}\n',
                 encoding="utf-8")
    out = tmp_path / "o"
    assert run("--backend", "fake", "--model", "oracle", "--tasks", "ner", "--task-args", f"path={p}",
               "--variant", "json", "--output", str(out)) == 0
    res = results(out)
    assert metrics(res, "ner")["f1"] == 100.0
    recs = records(out, "ner")
    assert [r["id"] for r in recs] == ["a", "b"] and recs[0]["extra"]["types"] == ["药物", "疾病"]
    assert recs[0]["generation"] == '[{"entity": "华法林", "type": "药物"}]'


def test_prompt_truncation_drops_shots_and_is_recorded(tmp_path):
    test, shots = _bio_files(tmp_path)
    out = tmp_path / "o"
    assert run("--backend", "fake", "--model", "oracle", "--tasks", "ner", "--task-args",
               f"path={test},fewshot={shots},shots=2,max_prompt_tokens=140", "--output", str(out)) == 0
    recs = records(out, "ner")
    assert all(r["extra"]["shots_requested"] == 2 for r in recs)
    assert [r["extra"]["shots_used"] for r in recs] == [1, 1]
    assert all(r["extra"]["prompt_truncated"] and r["prompt"].count("文本：") == 2 for r in recs)
    m = metrics(results(out), "ner")
    assert m["truncated_prompt_rate"] == 100.0 and m["f1"] == 100.0


def test_task_args_errors():
    with pytest.raises(ConfigError, match="Did you mean 'types'"):
        spec_from_args({"path": "x.bio", "typse": "疾病"})
    with pytest.raises(ConfigError, match="needs path="):
        spec_from_args({"types": "疾病"})
    with pytest.raises(ConfigError, match="not in types"):
        make_ner_task_from_args({"path": "x.bio", "types": "疾病", "aliases": "药:药物"})


def test_ner_without_task_args_says_what_to_give(tmp_path, capsys):
    assert run("--backend", "fake", "--model", "oracle", "--tasks", "ner", "--output", str(tmp_path / "o")) == 2
    assert "task 'ner' needs --task-args" in capsys.readouterr().err


# --- ChiMST format ------------------------------------------------------------------------------


def _chimst(data: Path) -> None:
    root = data / "chimst"
    root.mkdir(parents=True)
    recs = [("孩子发烧咳嗽三天", [(2, 4, "症状"), (4, 6, "症状")]), ("吃了布洛芬还是头痛", [(2, 5, "药物"), (7, 9, "症状")]),
            ("肺炎需要做胸片吗", [(0, 2, "疾病"), (5, 7, "检查")])]
    lines = [json.dumps({"text": t, "entities": [{"start": s, "end": e, "type": y} for s, e, y in ents]},
                        ensure_ascii=False) for t, ents in recs]
    (root / "test.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "train.jsonl").write_text("\n".join(lines[:2]) + "\n", encoding="utf-8")
    (root / "types.txt").write_text("# ChiMST categories used here\n疾病\n症状\n药物\n检查\n手术\n", encoding="utf-8")


def test_chimst_jsonl_in_the_data_dir(tmp_path):
    data = tmp_path / "data"
    _chimst(data)
    out = tmp_path / "o"
    assert run("--backend", "fake", "--model", "oracle", "--tasks", "chimst-ner", "--shots", "2",
               "--output", str(out), "--data-dir", str(data)) == 0
    res = results(out)
    assert res["tasks"]["chimst-ner"]["n"] == 3 and metrics(res, "chimst-ner")["f1"] == 100.0
    rec = records(out, "chimst-ner")[0]
    assert rec["extra"]["types"] == ["疾病", "症状", "药物", "检查", "手术"] and rec["extra"]["shots_used"] == 2
    assert "实体类型只能是以下之一：疾病、症状、药物、检查、手术" in rec["prompt"]
    assert set(res["tasks"]["chimst-ner"]["data_files"]) == {"chimst/test.jsonl", "chimst/train.jsonl", "chimst/types.txt"}


def test_chimst_missing_says_which_file(tmp_path, capsys):
    assert run("--backend", "fake", "--model", "oracle", "--tasks", "chimst-ner", "--output", str(tmp_path / "o"),
               "--data-dir", str(tmp_path / "data")) == 2
    err = capsys.readouterr().err
    assert "chimst/test.jsonl not found" in err and "no public copy" in err and "test.bio" in err


def test_chimst_too_few_shots(tmp_path, capsys):
    data = tmp_path / "data"
    _chimst(data)
    assert run("--backend", "fake", "--model", "oracle", "--tasks", "chimst-ner", "--output", str(tmp_path / "o"),
               "--data-dir", str(data)) == 2
    assert "5 shots requested" in capsys.readouterr().err


# --- readers and malformed input -----------------------------------------------------------------


def test_bio_reader_schemes_and_space_tokens(tmp_path):
    p = tmp_path / "x.conll"
    p.write_text("-DOCSTART- O\n\n胃\tB-D\n癌\tE-D\n \tO\n泰\tS-P\n素\tO\n\nA B-D\nB I-D\n", encoding="utf-8")
    recs = read_bio(p)
    assert [(r.text, r.spans, r.line) for r in recs] == [("胃癌 泰素", ((0, 2, "D"), (3, 4, "P")), 3),
                                                         ("AB", ((0, 2, "D"),), 9)]
    sep = read_bio(p, token_sep=" ")
    assert sep[1].text == "A B" and sep[1].spans == ((0, 3, "D"),)


def test_ccks_style_keys_and_bom(tmp_path):
    p = tmp_path / "c.txt"
    p.write_bytes(b"\xef\xbb\xbf" + json.dumps({"originalText": "服用泰素", "entities": [
        {"label_type": "药物", "start_pos": 2, "end_pos": 4, "overlap": 0}]}, ensure_ascii=False).encode() + b"\n")
    assert read_span_file(p, "jsonl", CCKS_TYPES, id_prefix="t-")[0].spans == ((2, 4, "药物"),)


MALFORMED = [
    ("t.jsonl", '{"text": "abc", "entities": []}\n{"text": "abc", "entities": [{"start": 1, "end": 9, "type": "D"}]}\n',
     2, "do not fit the text"),
    ("t.jsonl", '{"text": "abc", "entities": [}\n', 1, "invalid JSON"),
    ("t.jsonl", '{"text": "泰素片", "entities": [{"start": 0, "end": 1, "type": "D", "entity": "泰素"}]}\n', 1,
     "end must be exclusive"),
    ("t.jsonl", '{"txt": "abc"}\n', 1, "missing text"),
    ("t.jsonl", '{"text": "abc", "entities": [{"start": 0, "end": 1, "type": "X"}]}\n', 1, "not in the type inventory"),
    ("t.bio", "胃 B-D\n癌 I-D\n术 X-D\n", 3, "is not O, B-<type>"),
    ("t.bio", "胃 O\n癌 I-D\n", 2, "I-D follows O"),
    ("t.bio", "胃 B-D\n癌 I-P\n", 2, "follows an entity of type 'D'"),
    ("t.bio", "胃 B-D\n\n癌\n", 3, "expected a token and its tag"),
    ("t.bio", "胃 B-X\n", 1, "not in the type inventory"),
]


@pytest.mark.parametrize("name,content,line,msg", MALFORMED, ids=[f"{m[0]}:{m[3]}" for m in MALFORMED])
def test_malformed_input_names_file_and_line(tmp_path, name, content, line, msg):
    p = tmp_path / name
    p.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as e:
        read_span_file(p, None, ("D", "P"))
    assert f"{p}:{line}" in str(e.value) and msg in str(e.value)


def test_malformed_user_file_through_the_cli(tmp_path, capsys):
    p = tmp_path / "bad.bio"
    p.write_text("胃 B-D\n癌 Q-D\n", encoding="utf-8")
    assert run("--backend", "fake", "--model", "oracle", "--tasks", "ner", "--task-args", f"path={p}",
               "--output", str(tmp_path / "o")) == 2
    assert f"{p}:2" in capsys.readouterr().err


def test_duplicate_ids_rejected(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"id": 1, "text": "a", "entities": []}\n{"id": 1, "text": "b", "entities": []}\n', encoding="utf-8")
    with pytest.raises(DataError, match="d.jsonl:2.*duplicate record id"):
        read_span_jsonl(p)


# --- generation budget, truncated and explanation-only outputs --------------------------------------


def test_max_new_tokens_caps_every_record_budget_and_is_recorded(tmp_path):
    test, _ = _bio_files(tmp_path)
    out = tmp_path / "o"
    # each record's own budget is the floor, 64 tokens; the 13-character answer fills a cap of 8
    assert run("--backend", "fake", "--model", "fixed:胃癌 疾病\n阿司匹林 药物", "--tasks", "ner", "--task-args",
               f"path={test},types=疾病;药物", "--shots", "0", "--max-new-tokens", "8", "--output", str(out)) == 0
    res = results(out)
    validate(res)
    recs = records(out, "ner")
    assert [(r["extra"]["max_new_tokens"], r["extra"]["max_new_tokens_own"], r["extra"]["max_new_tokens_capped"])
            for r in recs] == [(8, 64, True), (8, 64, True)]
    gen = res["settings"]["generation"]["ner"]
    assert (gen["max_new_tokens_cap"], gen["max_new_tokens_range"], gen["records_capped"]) == (8, [8, 8], 2)
    assert gen["max_new_tokens"] == 8 and gen["decoding"] == "greedy"
    assert res["settings"]["max_new_tokens"] == 8
    m = metrics(res, "ner")
    assert (m["truncated_generation_rate"], m["truncated_generation_count"]) == (100.0, 2.0)
    assert all(r["extra"]["truncated"] for r in recs)
    # without the cap: the record's own budget, nothing truncated
    out2 = tmp_path / "o2"
    assert run("--backend", "fake", "--model", "fixed:胃癌 疾病\n阿司匹林 药物", "--tasks", "ner", "--task-args",
               f"path={test},types=疾病;药物", "--shots", "0", "--output", str(out2)) == 0
    assert [r["extra"]["max_new_tokens"] for r in records(out2, "ner")] == [64, 64]
    res2 = results(out2)
    assert res2["settings"]["generation"]["ner"]["max_new_tokens_cap"] is None
    assert metrics(res2, "ner")["truncated_generation_rate"] == 0.0


def test_cap_applies_to_the_requests_and_a_bad_cap_is_refused(tmp_path):
    test, _ = _bio_files(tmp_path)
    task = make_ner_task_from_args({"path": str(test)})
    data = task.load(tmp_path)
    capped = TaskRunOptions("paper", 0, 1, max_new_tokens=10)
    assert [r.generation.max_new_tokens for r in task.build_requests(data, data.samples, capped)] == [10, 10]
    high = TaskRunOptions("json", 0, 1, max_new_tokens=1000)  # a cap above the budget changes nothing
    assert [r.generation.max_new_tokens for r in task.build_requests(data, data.samples, high)] == [128, 128]
    with pytest.raises(ConfigError, match="--max-new-tokens"):
        task.check_options(TaskRunOptions("paper", max_new_tokens=0))


def test_truncation_uses_the_backends_token_count(tmp_path):
    from chimed_eval.core.types import Response

    test, _ = _bio_files(tmp_path)
    task = make_ner_task_from_args({"path": str(test), "types": "疾病;药物"})
    data = task.load(tmp_path)
    opts = TaskRunOptions("paper", 0, 1)
    req = task.build_requests(data, data.samples, opts)[0]
    budget = req.generation.max_new_tokens
    hit = task.score(data, data.samples[0], req, Response("k", text="胃癌 疾病", n_tokens=(budget,)), opts)
    short = task.score(data, data.samples[0], req, Response("k", text="胃癌 疾病" * 40, n_tokens=(budget - 1,)), opts)
    assert hit.extra["truncated"] is True and short.extra["truncated"] is False


def test_explanation_only_outputs_are_counted_apart_from_failures(tmp_path):
    test, _ = _bio_files(tmp_path)
    out = tmp_path / "o"
    assert run("--backend", "fake", "--model", "fixed:以下是文本中的医学实体：", "--tasks", "ner", "--task-args",
               f"path={test},types=疾病;药物", "--shots", "0", "--output", str(out)) == 0
    res = results(out)
    m = metrics(res, "ner")
    assert (m["explanation_only_rate"], m["explanation_only_count"]) == (100.0, 2.0)
    assert m["extraction_failure_rate"] == 0.0 and m["recall"] == 0.0
    assert all(r["extra"]["explanation_only"] and not r["extraction_failed"] for r in records(out, "ner"))
    before = res["tasks"]["ner"]["metrics"]
    assert main(["score", str(out)]) == 0  # re-scoring from the records gives the same figures
    assert results(out)["tasks"]["ner"]["metrics"] == before
