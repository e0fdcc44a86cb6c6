"""Typed evidence: every kind round-trips through a record's ``extra`` (same keys, same JSON), the
records of a fake run parse into their kind's evidence, and judging from parsed evidence gives
back the stored record."""

import json

import pytest

from chimed_eval.cli.app import main
from chimed_eval.evidence.kinds import (
    CHOICE_CORPUS, CHOICE_SAMPLE, GENERATION_CORPUS, GENERATION_SAMPLE, NER_CORPUS, NER_SAMPLE, SCALE_CORPUS,
    SCALE_SAMPLE, ChoiceEvidence, Decoding, GenerationEvidence, GenerationOutcome, GenerationStats, NerEvidence,
    NerOutcome, NerPromptFacts, ScaleEvidence, has_keys,
)
from chimed_eval.metrics.ner import Counts, RecordCounts, gold_spans_of, ner_gold
from chimed_eval.metrics.text import BleuStats
from chimed_eval.runs.reader import iter_records
from chimed_eval.core.types import record_to_score
from chimed_eval.core.types import Sample

STATS = GenerationStats(BleuStats(3, 4, (2, 1, 0, 0), (3, 2, 1, 1)), {"rouge-1": 0.5, "rouge-2": 0.25, "rouge-l": 0.5},
                        BleuStats(3, 4, (2, 1, 0, 0), (3, 2, 1, 1)), {"rouge1": 0.5, "rouge2": 0.2, "rougeL": 0.5},
                        {"rouge1": 0.4, "rouge2": 0.0, "rougeL": 0.4})
FACTS = NerPromptFacts(5, 4, ("t1", "t2", "t3", "t4"), True, 900, 700, False, 64, 120, True, "ner@1")
COUNTS = RecordCounts(Counts(1, 2, 3), Counts(1, 2, 4), Counts(0, 3, 4), {"疾病": Counts(1, 0, 1)}, 3, 1, 0, 4, 1)

EVIDENCE = [
    ChoiceEvidence(4),
    ChoiceEvidence(None),
    ScaleEvidence("AU", "Authoritarianism", 0, True, "ABCDE", ("非常同意", "同意", "不确定", "不同意", "非常不同意"),
                  (5.0, 4.0, 3.0, 2.0, 1.0), "scale@1"),
    GenerationEvidence(512, 37, Decoding("greedy", 0.0, 1.0, None, ("[human]:", "[bot]:")), "gen@1",
                       (("file", "cmd/x.csv"), ("line", 7), ("title", "胃痛")), None, None),
    GenerationEvidence(512, None, Decoding("paper-sampling", 1.0, 0.85, 99, ()), "gen@1", (), "回答[human]:再问",
                       GenerationOutcome(False, True, STATS)),
    NerEvidence("患者头痛", ("疾病", "药物"), {"病": "疾病"}, 12, FACTS, None),
    NerEvidence("患者头痛", ("疾病",), {}, None, FACTS, NerOutcome(COUNTS, 1, 0, False, True, False, False)),
    NerEvidence("患者头痛", ("疾病",)),
]


@pytest.mark.parametrize("ev", EVIDENCE, ids=lambda e: type(e).__name__)
def test_round_trip_through_json(ev):
    extra = json.loads(json.dumps(ev.to_extra(), ensure_ascii=False))
    assert type(ev).from_extra(extra) == ev
    assert json.dumps(type(ev).from_extra(extra).to_extra(), ensure_ascii=False) == json.dumps(extra, ensure_ascii=False)


def test_extra_keys_are_the_records_keys_in_order():
    assert list(EVIDENCE[2].to_extra()) == ["scale", "scale_name", "scale_index", "reverse", "letters", "options",
                                            "points", "prompt_version"]
    assert list(EVIDENCE[4].to_extra()) == ["max_new_tokens", "n_tokens", "decoding", "prompt_version",
                                            "generation_uncut", "empty", "truncated", "stats"]
    assert list(EVIDENCE[6].to_extra())[:4] == ["text", "types", "aliases", "n_tokens"]
    assert list(EVIDENCE[6].to_extra())[-7:] == ["counts", "n_duplicates", "n_dropped", "output_cut", "truncated",
                                                 "empty", "explanation_only"]
    assert ChoiceEvidence(None).to_extra() == {} and ChoiceEvidence(0).to_extra() == {"n_choices": 0}


def test_kinds_recognise_their_records():
    assert has_keys(EVIDENCE[2].to_extra(), ScaleEvidence.KEYS)
    assert has_keys(EVIDENCE[6].to_extra(), NerEvidence.KEYS) and not has_keys(EVIDENCE[5].to_extra(), NerEvidence.KEYS)
    assert not has_keys(None, ScaleEvidence.KEYS) and not has_keys({"n_choices": 4}, ScaleEvidence.KEYS)


def test_metric_records_name_the_evidence_they_read():
    for sample, corpus, kind in ((CHOICE_SAMPLE, CHOICE_CORPUS, ChoiceEvidence), (SCALE_SAMPLE, SCALE_CORPUS, ScaleEvidence),
                                 (GENERATION_SAMPLE, GENERATION_CORPUS, GenerationEvidence),
                                 (NER_SAMPLE, NER_CORPUS, NerEvidence)):
        assert sample.evidence is kind and corpus.evidence is kind and sample.name and corpus.name


def test_sample_accessors_read_metadata():
    s = Sample("n1", "患者头痛发热", metadata={"spans": [[2, 4, "症状"]], "turns": [["patient", "头痛\n"]]})
    assert s.spans == ((2, 4, "症状"),) and s.turns == (("patient", "头痛\n"),)
    assert Sample("q", "x").spans == () and Sample("q", "x").turns is None
    assert gold_spans_of(ner_gold(s.input, s.spans)) == list(s.spans)


SCALE = {"options": ["同意", "不确定", "不同意"], "scales": {"AU": "A", "BE": "B"},
         "items": [{"id": "1", "scale": "AU", "text": "陈述一", "reverse": True}, {"id": "2", "scale": "BE", "text": "陈述二"}]}


def _run(tmp_path, name, *args):
    out = tmp_path / name
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "random", "--output", str(out), *args]) == 0
    return out


def _check_records(out, task, kind, judge, variant):
    recs = list(iter_records(out, task))
    assert recs
    for rec in recs:
        ev = kind.from_extra(rec["extra"])
        assert json.dumps(ev.to_extra(), ensure_ascii=False) == json.dumps(rec["extra"], ensure_ascii=False)
        s = record_to_score(rec)
        again = judge(s, ev, variant)
        assert (again.prediction, again.score, again.extraction_failed, dict(again.extra)) == (
            s.prediction, s.score, s.extraction_failed, dict(s.extra))


def test_fake_run_records_parse_into_evidence(tmp_path):
    exam = tmp_path / "exam.jsonl"
    exam.write_text("".join(json.dumps({"question": f"问题{i}", "A": "甲", "B": "乙", "C": "丙", "answer": "ABC"[i % 3]},
                                       ensure_ascii=False) + "\n" for i in range(6)), encoding="utf-8")
    out = _run(tmp_path, "mcq", "--tasks", "mcq", "--task-args", f"path={exam}")
    _check_records(out, "mcq", ChoiceEvidence, CHOICE_SAMPLE, "paper")
    scale = tmp_path / "scale.json"
    scale.write_text(json.dumps(SCALE, ensure_ascii=False), encoding="utf-8")
    for variant in ("next-token", "generate"):
        out = _run(tmp_path, f"scale-{variant}", "--tasks", "scale", "--task-args", f"path={scale}", "--variant", variant)
        _check_records(out, "scale", ScaleEvidence, SCALE_SAMPLE, variant)
    ner = tmp_path / "ner.jsonl"
    ner.write_text("".join(json.dumps({"text": t, "entities": [{"start": 0, "end": 2, "type": "疾病"}]}, ensure_ascii=False) + "\n"
                           for t in ("头痛三天", "发热一周", "咳嗽两月")), encoding="utf-8")
    out = _run(tmp_path, "ner", "--tasks", "ner", "--task-args", f"path={ner},types=疾病;药物", "--shots", "0")
    _check_records(out, "ner", NerEvidence, NER_SAMPLE, "paper")


def test_fake_run_generation_records_parse_into_evidence(shared_data, tmp_path):
    pytest.importorskip("jieba")
    out = _run(tmp_path, "gen", "--tasks", "cmd-qa,mc-dialogue", "--limit", "3", "--data-dir", str(shared_data))
    for task in ("cmd-qa", "mc-dialogue"):
        _check_records(out, task, GenerationEvidence, GENERATION_SAMPLE, "paper")
