"""Your own open-QA files, second pass (issue 22, items 22 and 26): a JSON list reference is
several references (multi-reference BLEU, best ROUGE), duplicate ids are refused at load with
file:line, ``format=jsonl`` is accepted, a ``type = "qa"`` config entry runs, and ``where=`` filters rows."""

from __future__ import annotations

import json

import pytest

from chimed_eval.cli.app import main
from chimed_eval.metrics.text import paper_rouge_pair, rouge_score_pair, sacrebleu_from_stats, sacrebleu_stats

ROWS = [{"id": "q1", "科室": "心内科", "问题": "高血压患者饮食要注意什么？", "回答": ["低盐低脂饮食", "限制钠盐摄入"]},
        {"id": "q2", "科室": "神经科", "问题": "偏头痛发作时怎么办？", "回答": "安静休息，避光"}]


def _run(tmp_path, task_args: str, model: str = "oracle", out: str = "o", extra: tuple[str, ...] = ()) -> int:
    return main(["run", "--no-progress", "--backend", "fake", "--model", model, "--tasks", "qa", "--task-args",
                 task_args, "--output", str(tmp_path / out), *extra])


def _records(out) -> list[dict]:
    return [json.loads(line) for line in (out / "samples" / "qa.jsonl").read_text(encoding="utf-8").splitlines()]


def _metrics(out) -> dict[str, float]:
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return {m["name"]: m["value"] for m in res["tasks"]["qa"]["metrics"]}


def test_a_json_list_reference_is_several_references_not_its_python_repr(tmp_path):
    f = tmp_path / "qa.json"
    f.write_text(json.dumps(ROWS, ensure_ascii=False), encoding="utf-8")
    # a model answering the second reference of q1 word for word
    assert _run(tmp_path, f"path={f},question=问题,answer=回答,id=id", model="fixed:限制钠盐摄入") == 0
    recs = {r["id"]: r for r in _records(tmp_path / "o")}
    assert recs["q1-1"]["gold"] == "低盐低脂饮食" and "[" not in recs["q1-1"]["gold"]
    assert recs["q1-1"]["extra"]["references"] == ["低盐低脂饮食", "限制钠盐摄入"]
    assert recs["q1-1"]["extra"]["stats"]["rouge_char"]["rougeL"] == pytest.approx(1.0)
    assert recs["q1-1"]["score"] == pytest.approx(1.0)
    assert "references" not in recs["q2-1"]["extra"]
    before = _metrics(tmp_path / "o")
    assert main(["score", str(tmp_path / "o")]) == 0  # re-scoring reads the references from the records
    assert _metrics(tmp_path / "o") == before
    # the oracle (answering the first reference) still scores 100
    assert _run(tmp_path, f"path={f},question=问题,answer=回答,id=id", out="oracle") == 0
    assert _metrics(tmp_path / "oracle")["sacrebleu4_cum"] == pytest.approx(100.0)


def test_multi_reference_statistics_match_nltk_sacrebleu_and_rouge_score():
    nltk_bleu = pytest.importorskip("nltk.translate.bleu_score")
    sacrebleu = pytest.importorskip("sacrebleu")
    from rouge_score import rouge_scorer

    from chimed_eval.metrics.text import char_tokens, nltk_bleu_stats_multi, nltk_corpus_bleu

    hyp, refs = "建议低盐饮食并限制饮酒", ["低盐低脂饮食", "建议限制饮酒和钠盐", "多运动"]
    # nltk: counts clipped by the best reference, the closest reference length
    st = nltk_bleu_stats_multi(list(hyp), [list(r) for r in refs], 3)
    for w in ((1.0,), (0.5, 0.5), (0.333, 0.333, 0.334)):
        want = nltk_bleu.corpus_bleu([[list(r) for r in refs]], [list(hyp)], weights=w)
        assert nltk_corpus_bleu(st, w) == pytest.approx(want, abs=1e-12)
    want = sacrebleu.metrics.BLEU(tokenize="zh").corpus_score([hyp], [[r] for r in refs]).score
    assert sacrebleu_from_stats(sacrebleu_stats(hyp, refs), 4) == pytest.approx(want, abs=1e-9)

    class Chars:
        def tokenize(self, text):
            return char_tokens(text)

    multi = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=Chars()).score_multi(refs, hyp)
    assert rouge_score_pair(hyp, refs, "char") == pytest.approx({k: v.fmeasure for k, v in multi.items()})
    # the paper protocol's rouge package knows one reference: the best over them
    best = {k: max(paper_rouge_pair(hyp, r)[k] for r in refs) for k in ("rouge-1", "rouge-2", "rouge-l")}
    assert paper_rouge_pair(hyp, refs) == pytest.approx(best)


def test_duplicate_qa_ids_are_refused_at_load_with_file_and_line(tmp_path, capsys):
    f = tmp_path / "qa.jsonl"
    rows = [ROWS[0], {**ROWS[1], "id": "q1"}]
    f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    args = f"path={f},question=问题,answer=回答,id=id"
    assert main(["validate", "--tasks", "qa", "--task-args", args]) == 2
    err = capsys.readouterr().err
    assert f"{f}:2: field 'id'" in err and "duplicate item id 'q1' (first at line 1)" in err, err
    assert _run(tmp_path, args) == 2
    assert f"{f}:2: field 'id'" in capsys.readouterr().err


def test_a_json_file_of_json_lines_takes_the_advised_format_jsonl(tmp_path, capsys):
    f = tmp_path / "qa.json"  # JSON lines under a .json name
    f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS), encoding="utf-8")
    assert _run(tmp_path, f"path={f},question=问题,answer=回答") == 2
    assert "pass format=jsonl" in capsys.readouterr().err
    assert _run(tmp_path, f"path={f},question=问题,answer=回答,format=jsonl") == 0
    assert len(_records(tmp_path / "o")) == 2


def test_a_task_config_entry_of_type_qa_runs_with_its_path_relative_to_the_config(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "qa.json").write_text(json.dumps(ROWS, ensure_ascii=False), encoding="utf-8")
    cfg = tmp_path / "tasks.toml"
    cfg.write_text('[[tasks]]\ntype = "qa"\nname = "qa"\npath = "data/qa.json"\nquestion = "问题"\nanswer = "回答"\n'
                   'where = "科室=心内科"\n', encoding="utf-8")
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "oracle", "--tasks", "qa",
                 "--task-config", str(cfg), "--output", str(tmp_path / "o")]) == 0
    assert [r["id"] for r in _records(tmp_path / "o")] == ["1-1"]  # where= kept the 心内科 row only


def test_where_filters_qa_rows_and_a_misspelt_column_is_named(tmp_path, capsys):
    f = tmp_path / "qa.json"
    f.write_text(json.dumps(ROWS, ensure_ascii=False), encoding="utf-8")
    assert _run(tmp_path, f"path={f},question=问题,answer=回答,id=id,where=科室=神经科") == 0
    assert [r["id"] for r in _records(tmp_path / "o")] == ["q2-1"]
    assert _run(tmp_path, f"path={f},question=问题,answer=回答,where=科目=神经科", out="o2") == 2
    err = capsys.readouterr().err
    assert "where= names column '科目'" in err and "'科室'" in err, err
    assert _run(tmp_path, f"path={f},question=问题,answer=回答,where=科室=眼科", out="o3") == 2
    assert "no row matches where=科室=眼科" in capsys.readouterr().err


def test_a_judge_is_shown_every_reference_of_an_item(tmp_path):
    f = tmp_path / "qa.json"
    f.write_text(json.dumps(ROWS, ensure_ascii=False), encoding="utf-8")
    assert _run(tmp_path, f"path={f},question=问题,answer=回答,id=id") == 0
    assert main(["judge", str(tmp_path / "o"), "--judge-backend", "fake", "--no-progress", "--judge", "judge:reference"]) == 0
    (d,) = (tmp_path / "o" / "judge").iterdir()
    recs = {r["id"]: r for r in map(json.loads, (d / "records" / "qa.jsonl").read_text(encoding="utf-8").splitlines())}
    assert "[参考答案开始]\n(1) 低盐低脂饮食\n(2) 限制钠盐摄入\n" in recs["q1-1"]["prompt"], recs["q1-1"]["prompt"]
    assert "[参考答案开始]\n安静休息，避光\n" in recs["q2-1"]["prompt"]


def test_contamination_checks_every_reference_of_an_item(tmp_path):
    from chimed_eval.contamination.ngrams import sample_texts
    from chimed_eval.tasks.qa import QaSpec, load

    f = tmp_path / "qa.json"
    f.write_text(json.dumps(ROWS, ensure_ascii=False), encoding="utf-8")
    s = load(QaSpec(path=str(f), question="问题", answer="回答", id="id")).samples[0]
    texts = dict(sample_texts(s))
    assert texts["reference"] == "低盐低脂饮食" and texts["reference 2"] == "限制钠盐摄入"
