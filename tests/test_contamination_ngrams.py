"""The n-gram rule of ``chimed-eval contamination``: tokenisation (a table, and lm-eval's janitor
on English as the outside reference), lm-eval's rule (one shared 13-gram flags, 12 do not), items
too short to check, the overlap ratio, streaming in batches with the first corpus location, and
hash hits confirmed token by token."""

from __future__ import annotations

import string

import pytest

from chimed_eval.contamination import ngrams as ng
from chimed_eval.contamination.ngrams import TestIndex, TestItem, item_overlaps, sample_texts, word_tokens
from chimed_eval.contamination.scan import CorpusScan
from chimed_eval.core.types import Sample

TEXT = "患者因腹胀发现腹部包块在我院腹科行手术探查术中见盆腹腔肿物"  # 29 CJK characters


@pytest.mark.parametrize("text, expected", [
    ("患者2008年9月3日因“腹胀”", ["患", "者", "2008", "年", "9", "月", "3", "日", "因", "腹", "胀"]),
    ("ＡＢＣ１２３，Ｈｅｌｌｏ！", ["abc123", "hello"]),  # full-width: NFKC
    ("COVID-19 疫苗，HbA1c 7.5%", ["covid", "19", "疫", "苗", "hba1c", "7", "5"]),
    ("Hello,   World!\t_x_\n", ["hello", "world", "x"]),  # punctuation, whitespace and _ dropped
    ("カタカナ・ひらがな", ["カ", "タ", "カ", "ナ", "ひ", "ら", "が", "な"]),  # ・ is punctuation
    ("한국어 텍스트", ["한", "국", "어", "텍", "스", "트"]),
    ("Ⅲ期①②", ["iii", "期", "12"]),  # compatibility forms: NFKC
    ("cafe\u0301 〇々", ["café", "〇", "々"]),  # a combining accent composes; 〇 and 々 are CJK
    ("don't", ["don", "t"]),  # unlike lm-eval's janitor ("dont"): ' separates
    ("。，！？……", []),
])
def test_tokenisation_table(text, expected):
    assert word_tokens(text) == expected


def janitor_tokens(s: str) -> list[str]:
    """lm-evaluation-harness's janitor (lm_eval/decontamination/janitor.py): ASCII lowercased,
    string.punctuation deleted, split on whitespace."""
    table = str.maketrans(string.ascii_lowercase + string.ascii_uppercase, string.ascii_lowercase * 2,
                          string.punctuation)
    return s.translate(table).split()


@pytest.mark.parametrize("s", ["The quick brown fox jumps over the lazy dog.",
                               "Which of the following is NOT a cause of hypertension? (A) Renal artery stenosis"])
def test_english_tokens_are_lm_eval_janitor_tokens(s):
    assert word_tokens(s) == janitor_tokens(s)


def test_punctuation_inside_a_word_separates_where_the_janitor_joins():
    s = "Patients aged 45-60 received 20 mg/day"
    assert janitor_tokens(s) == ["patients", "aged", "4560", "received", "20", "mgday"]
    assert word_tokens(s) == ["patients", "aged", "45", "60", "received", "20", "mg", "day"]


def _run(items, docs, n=13, max_documents=None, **scan_args):
    index = TestIndex(items, n)
    scan = CorpusScan(index, **scan_args)
    for label, segs in docs:
        scan.add(label, segs)
    return {(o.task, o.id): o for o in item_overlaps(index, scan.sightings(max_documents))}, scan


def test_one_shared_13_gram_flags_twelve_do_not():
    items = [TestItem("t", "a", (("input", TEXT),))]
    got, _ = _run(items, [("c.txt", [(1, "无关的文字" + TEXT[5:18] + "再见")])])  # 13 characters of TEXT
    o = got[("t", "a")]
    assert o.contaminated is True and o.seen == 1 and o.ngrams == len(TEXT) - 12
    assert o.example == TEXT[5:18] and o.location == "c.txt:1" and o.matched_fields == ("input",)
    got, _ = _run(items, [("c.txt", [(1, "无关的文字" + TEXT[5:17] + "再见")])])  # 12 characters
    assert got[("t", "a")].contaminated is False and got[("t", "a")].seen == 0


def test_punctuation_whitespace_and_width_do_not_hide_a_copy():
    items = [TestItem("t", "a", (("input", "ABC " + TEXT[:12]),))]  # tokens: abc + 12 characters
    copy = "ａｂｃ，" + "，".join(TEXT[:6]) + "\n  " + TEXT[6:12] + "。"
    got, _ = _run(items, [("c", [(None, copy)])])
    assert got[("t", "a")].contaminated is True and got[("t", "a")].example == "abc" + TEXT[:12]


def test_ngrams_do_not_cross_documents_but_cross_a_paragraphs_lines():
    items = [TestItem("t", "a", (("input", TEXT),))]
    split = [("c", [(1, TEXT[:7])]), ("c", [(2, TEXT[7:14])])]  # two documents
    assert _run(items, split)[0][("t", "a")].contaminated is False
    para = [("c", [(1, "前言"), (2, TEXT[:7]), (3, TEXT[7:14])])]  # one paragraph over three lines
    o = _run(items, para)[0][("t", "a")]
    assert o.contaminated is True and o.location == "c:2"  # the line where the n-gram starts


def test_too_short_items_are_counted_apart_even_when_copied():
    short = Sample("s", "脾之华在", choices=("唇", "面", "毛", "爪"), target=0)
    items = [TestItem("t", "s", sample_texts(short)), TestItem("t", "long", (("input", TEXT), ("choice A", "是")))]
    got, _ = _run(items, [("c", [(None, "脾之华在 唇面毛爪")]), ("c", [(None, TEXT)])])
    assert got[("t", "s")].contaminated is None and got[("t", "s")].overlap_ratio is None
    assert got[("t", "s")].as_dict()["too_short"] is True
    assert got[("t", "long")].contaminated is True  # a short text beside a long one: checked


def test_options_are_matched_each_on_its_own_never_across_the_letter_labels():
    # two different questions sharing an option list: "A 高 血 压 B 糖 尿 病 C 冠 心 病 D 肺 炎" is 16
    # tokens when question and lettered options are one text; no option alone has 13
    options = ("高血压", "糖尿病", "冠心病", "肺炎")
    q1 = Sample("q1", "患者男性六十岁体检发现血糖升高最可能的诊断是", choices=options, target=1)
    q2 = Sample("q2", "女性七十岁反复头晕测血压一百七十毫米汞柱应诊断", choices=options, target=0)
    assert [f for f, _ in sample_texts(q1)] == ["input", "choice A", "choice B", "choice C", "choice D"]
    items = [TestItem("t", s.id, sample_texts(s)) for s in (q1, q2)]
    corpus = [("c", [(None, "另一道题：下列哪项正确？A. 高血压 B. 糖尿病 C. 冠心病 D. 肺炎")])]
    got, _ = _run(items, corpus)
    for q in ("q1", "q2"):
        assert got[("t", q)].contaminated is False and got[("t", q)].match is None and got[("t", q)].seen == 0
    # nor across the label between the question and option A
    got, _ = _run(items, [("c", [(None, q1.input[-9:] + "A. 高血压")])])
    assert got[("t", "q1")].seen == 0


def test_an_option_only_match_is_reported_apart_and_a_question_match_wins():
    long_option = "急性心肌梗死后二十四小时内死亡的主要原因"  # 20 characters
    s = Sample("q", "下列哪一项说法是正确的呢请选择一个最合适的答案", choices=(long_option, "否"), target=0)
    items = [TestItem("t", "q", sample_texts(s))]
    got, _ = _run(items, [("c", [(None, "教材：" + long_option + "是心室颤动")])])
    o = got[("t", "q")]
    assert (o.contaminated, o.option_only, o.match, o.matched_fields) == (False, True, "option-only", ("choice A",))
    assert o.as_dict()["match"] == "option-only" and o.as_dict()["too_short"] is False
    assert o.example == long_option[:13] and o.location == "c"
    got, _ = _run(items, [("c", [(None, long_option)]), ("d", [(None, s.input)])])
    o = got[("t", "q")]
    assert (o.contaminated, o.option_only, o.match) == (True, False, "question")
    assert o.location == "d" and o.matched_fields == ("input", "choice A")  # the example: a question n-gram
    # a short question: too short to check, its option-only match still reported
    short = Sample("s", "脾之华在", choices=(long_option, "面"), target=0)
    got, _ = _run([TestItem("t", "s", sample_texts(short))], [("c", [(None, long_option)])])
    o = got[("t", "s")]
    assert (o.contaminated, o.option_only, o.match) == (None, True, "option-only")


def test_sample_texts_fields():
    d = Sample("d", "[human]:头痛\n[bot]:", target="多休息", metadata={"turns": [["patient", "头痛"], ["doctor", "多久了"]]})
    assert sample_texts(d) == (("input", "[human]:头痛\n[bot]:"), ("reference", "多休息"),
                               ("turn 1 (patient)", "头痛"), ("turn 2 (doctor)", "多久了"))


def test_overlap_ratio_is_distinct_ngrams_seen_over_the_items():
    text = TEXT[:20]  # 8 distinct 13-grams
    got, _ = _run([TestItem("t", "a", (("reference", text), ("input", text)))], [("c", [(None, text[:14])])])
    o = got[("t", "a")]
    assert (o.ngrams, o.seen, o.overlap_ratio) == (8, 2, 0.25)
    assert o.matched_fields == ("reference", "input")


def test_streaming_in_small_batches_keeps_the_first_location_and_counts_documents():
    items = [TestItem("t", "a", (("input", TEXT),)), TestItem("u", "b", (("input", TEXT[::-1]),))]
    docs = [("f.jsonl", [(i, f"第{i}行无关文字内容")]) for i in range(1, 40)]
    docs[10] = ("f.jsonl", [(11, TEXT[2:15])])
    docs[30] = ("f.jsonl", [(31, TEXT)])
    docs.append(("g.txt", [(5, TEXT[2:15])]))
    got, scan = _run(items, docs, chunk_tokens=7)  # a flush every document or two
    o = got[("t", "a")]
    assert o.location == "f.jsonl:31" and o.documents == 1  # the most specific n-gram: in one document
    assert o.seen == len(TEXT) - 12
    assert scan.sightings()[ng.key(list(TEXT[2:15]))].location == "f.jsonl:11"  # first of three documents
    assert scan.sightings()[ng.key(list(TEXT[2:15]))].documents == 3
    assert got[("u", "b")].contaminated is False
    assert scan.documents == 40
    # --max-documents 2 drops the n-gram seen in three documents, not the others
    got2, _ = _run(items, docs, max_documents=2, chunk_tokens=7)
    assert got2[("t", "a")].seen == len(TEXT) - 12 - 1


def test_hash_hits_are_confirmed_token_by_token(monkeypatch):
    import numpy as np

    monkeypatch.setattr(ng, "_mix", lambda v: np.zeros_like(v))  # every n-gram hashes the same
    items = [TestItem("t", "a", (("input", TEXT),))]
    got, _ = _run(items, [("c", [(None, "完全不同的另一段足够长的医学文本内容")])])
    assert got[("t", "a")].contaminated is False
    got, _ = _run(items, [("c", [(None, TEXT[:13])])])
    assert got[("t", "a")].contaminated is True and got[("t", "a")].seen == 1


def test_latin_tokens_hash_by_content():
    items = [TestItem("t", "en", (("input", "the patient presented with acute chest pain radiating to the left arm "
                                            "and jaw"),))]
    got, _ = _run(items, [("c", [(None, "Notes: The patient presented with ACUTE chest-pain, radiating to the left "
                                        "arm and jaw.")])])
    assert got[("t", "en")].contaminated is True and got[("t", "en")].seen == 2
    got, _ = _run(items, [("c", [(None, "the patient presented with acute chest pain radiating to the right arm "
                                        "and jaw")])])
    assert got[("t", "en")].contaminated is False
