"""A user's own NER files as downloaded (issue 18, items 5 and 6): a ``.json`` file holding a
JSON array of records, other key names (``text_field=`` ...), inclusive end offsets
(``end_inclusive=true``), and few-shot records that repeat a test record's text.

All data here is written by the tests, in the shapes public Chinese medical NER releases use
(a CMeEE-like array with ``start_idx`` / ``end_idx`` inclusive ends and an ``entity`` string).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from chimed_eval.core.errors import ConfigError, DataError
from chimed_eval.files.spans import SpanFields, read_span_file
from chimed_eval.tasks.ner import load_ner_specs, load_spec, spec_from_args

# CMeEE-like: a JSON array (pretty-printed, one key per line), end_idx is the last character
CMEEE = [
    {"text": "患者口服华法林后出现牙龈出血。",
     "entities": [{"start_idx": 4, "end_idx": 6, "type": "dru", "entity": "华法林"},
                  {"start_idx": 10, "end_idx": 13, "type": "sym", "entity": "牙龈出血"}]},
    {"text": "确诊肺炎。", "entities": [{"start_idx": 2, "end_idx": 3, "type": "dis", "entity": "肺炎"}]},
    {"text": "HLA-DQB1*0302阳性。", "entities": [{"start_idx": 8, "end_idx": 12, "type": "gene", "entity": "*0302"}]},
]
CMEEE_ARGS = "text_field=text,entities_field=entities,start_field=start_idx,end_field=end_idx,type_field=type,end_inclusive=true"


def _write_array(path: Path, records: list[dict]) -> Path:
    path.write_text(json.dumps(records, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def _args(s: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in s.split(","))


def run(*argv: str) -> int:
    return main(["run", "--no-progress", *argv])


def test_a_json_array_file_is_read_as_records_with_their_lines(tmp_path):
    p = tmp_path / "dev.json"
    p.write_text(json.dumps([{"text": "口服华法林", "entities": [{"start": 2, "end": 5, "type": "药物"}]},
                             {"text": "确诊肺炎", "entities": []}], ensure_ascii=False, indent=2), encoding="utf-8")
    recs = read_span_file(p)
    assert [(r.text, r.spans) for r in recs] == [("口服华法林", ((2, 5, "药物"),)), ("确诊肺炎", ())]
    assert [r.line for r in recs] == [2, 12]  # the line of each record's "{"
    assert read_span_file(p, "json")[0].spans == ((2, 5, "药物"),)
    # a .json file of JSON lines (CCKS-2019 ships one) is still read as JSONL
    q = tmp_path / "lines.json"
    q.write_text('{"text": "口服华法林", "entities": [{"start": 2, "end": 5, "type": "药物"}]}\n', encoding="utf-8")
    assert read_span_file(q)[0].spans == ((2, 5, "药物"),)


def test_an_error_in_a_json_array_names_the_records_line(tmp_path):
    p = _write_array(tmp_path / "bad.json", [{"text": "abc", "entities": []},
                                             {"text": "abc", "entities": [{"start": 1, "end": 9, "type": "D"}]}])
    with pytest.raises(DataError) as e:
        read_span_file(p)
    assert f"{p}:6" in str(e.value) and "entities[0]" in str(e.value) and "do not fit" in str(e.value)


def test_renamed_fields_and_inclusive_ends(tmp_path):
    p = _write_array(tmp_path / "cmeee_dev.json", CMEEE)
    spec = spec_from_args({"path": str(p), **_args(CMEEE_ARGS)})
    assert spec.end_inclusive is True and spec.start_field == "start_idx"
    data = load_spec(spec)
    assert [s.spans for s in data.samples] == [((4, 7, "dru"), (10, 14, "sym")), ((2, 4, "dis"),), ((8, 13, "gene"),)]
    assert all(s.input[a:b] for s in data.samples for a, b, _ in s.spans)
    assert data.samples[2].input[8:13] == "*0302"
    assert data.labels == ("dru", "sym", "dis", "gene")


def test_other_key_names_are_found_only_where_told(tmp_path):
    recs = [{"sentence_text": "服用泰素", "ents": [{"b": 2, "e": 4, "cat": "药物"}]}]
    p = _write_array(tmp_path / "x.json", recs)
    fields = SpanFields(text="sentence_text", entities="ents", start="b", end="e", type="cat")
    assert read_span_file(p, fields=fields)[0].spans == ((2, 4, "药物"),)
    with pytest.raises(DataError, match=r"x\.json:2.*text_field=<key>"):
        read_span_file(p)  # without text_field the error says which keys the record has
    with pytest.raises(DataError, match=r"x\.json:2: field 'body'"):
        read_span_file(p, fields=SpanFields(text="body"))


def test_inclusive_ends_without_the_flag_are_refused_with_a_hint(tmp_path):
    p = _write_array(tmp_path / "cmeee.json", CMEEE)
    fields = SpanFields(start="start_idx", end="end_idx")
    with pytest.raises(DataError) as e:
        read_span_file(p, fields=fields)
    msg = str(e.value)
    assert f"{p}:2" in msg and "entities[0].entity" in msg and "end_inclusive=true" in msg


def test_a_wrong_mention_under_end_inclusive_is_still_caught(tmp_path):
    bad = [{"text": "确诊肺炎。", "entities": [{"start_idx": 2, "end_idx": 4, "type": "dis", "entity": "肺炎"}]}]
    p = _write_array(tmp_path / "shifted.json", bad)
    with pytest.raises(DataError) as e:
        read_span_file(p, fields=SpanFields(start="start_idx", end="end_idx", end_inclusive=True))
    assert f"{p}:2" in str(e.value) and "'肺炎。'" in str(e.value) and "last character" in str(e.value)
    past = [{"text": "肺炎", "entities": [{"start_idx": 0, "end_idx": 2, "type": "dis"}]}]
    with pytest.raises(DataError, match="end_inclusive=true: 0 <= start <= end < len"):
        read_span_file(_write_array(tmp_path / "past.json", past),
                       fields=SpanFields(start="start_idx", end="end_idx", end_inclusive=True))


def test_field_settings_are_refused_for_bio_and_bad_flags(tmp_path):
    p = tmp_path / "t.bio"
    p.write_text("胃 B-D\n癌 I-D\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="text_field, end_inclusive apply to JSON/JSONL"):
        load_spec(spec_from_args({"path": str(p), "text_field": "x", "end_inclusive": "true"}))
    with pytest.raises(ConfigError, match="'end_inclusive': expected true or false"):
        spec_from_args({"path": str(p), "end_inclusive": "maybe"})


def test_cmeee_array_through_the_cli_and_a_task_config(tmp_path):
    p = _write_array(tmp_path / "cmeee_dev.json", CMEEE)
    out = tmp_path / "o"
    assert run("--backend", "fake", "--model", "oracle", "--tasks", "ner", "--task-args",
               f"path={p},{CMEEE_ARGS}", "--output", str(out)) == 0
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert {m["name"]: m["value"] for m in res["tasks"]["ner"]["metrics"]}["f1"] == 100.0
    first = json.loads((out / "samples" / "ner.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first["gold"] == [["华法林", "dru", 4, 7], ["牙龈出血", "sym", 10, 14]]
    cfg = tmp_path / "tasks.toml"
    cfg.write_text('[[tasks]]\ntype = "ner"\nname = "cmeee"\npath = "cmeee_dev.json"\nstart_field = "start_idx"\n'
                   'end_field = "end_idx"\nend_inclusive = true\n', encoding="utf-8")
    [spec] = load_ner_specs(cfg)
    assert load_spec(spec).samples[0].spans == ((4, 7, "dru"), (10, 14, "sym"))


def test_few_shot_records_repeating_a_test_text_are_refused(tmp_path):
    test = tmp_path / "test.jsonl"
    test.write_text('{"text": "口服华法林", "entities": [{"start": 2, "end": 5, "type": "药物"}]}\n'
                    '{"text": "确诊肺炎", "entities": [{"start": 2, "end": 4, "type": "疾病"}]}\n', encoding="utf-8")
    shots = tmp_path / "train.jsonl"
    shots.write_text('{"text": "服用泰素", "entities": [{"start": 2, "end": 4, "type": "药物"}]}\n\n'
                     '{"text": "确诊肺炎", "entities": [{"start": 2, "end": 4, "type": "疾病"}]}\n', encoding="utf-8")
    with pytest.raises(DataError) as e:
        load_spec(spec_from_args({"path": str(test), "fewshot": str(shots)}))
    msg = str(e.value)
    assert f"{shots}:3" in msg and f"{test}:2" in msg and "identical" in msg
    out = tmp_path / "o"
    assert run("--backend", "fake", "--model", "oracle", "--tasks", "ner", "--task-args",
               f"path={test},fewshot={shots},shots=1", "--output", str(out)) == 2
    # a shot whose text differs is fine
    shots.write_text('{"text": "服用泰素", "entities": [{"start": 2, "end": 4, "type": "药物"}]}\n', encoding="utf-8")
    assert len(load_spec(spec_from_args({"path": str(test), "fewshot": str(shots)})).fewshot[None]) == 1
