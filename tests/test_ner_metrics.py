"""NER metrics as data: (text, gold, raw output, expected P/R/F1) cases, Chinese included, and the
span-level figures checked against seqeval on the equivalent BIO sequences."""

from __future__ import annotations

import random
import warnings

import pytest

from chimed_eval.extract.ner import TypeInventory, parse_ner
from chimed_eval.metrics.ner import (
    Counts, RecordCounts, gold_spans, locate, multiset_counts, ner_metrics, record_counts, resolve_overlaps,
    set_counts, spans_to_bio,
)

TYPES = ("疾病和诊断", "影像检查", "实验室检验", "手术", "药物", "解剖部位")
INV = TypeInventory(TYPES, {"检查": "影像检查", "检验": "实验室检验"})
D, J, L, S, P, A = TYPES

# 胃0 癌1 术2 后3 ，4 予5 泰6 素7 化8 疗9 。10 复11 查12 C13 T14 示15 肝16 转17 移18 。19 胃20 癌21 复22 发23 。24
T = "胃癌术后，予泰素化疗。复查CT示肝转移。胃癌复发。"
G = [(0, 2, D), (6, 8, P), (13, 15, J), (16, 19, D), (20, 22, D)]  # 胃癌 repeats: 4 unique pairs, 5 mentions
ALL = "胃癌 疾病和诊断\n泰素 药物\nCT 影像检查\n肝转移 疾病和诊断\n胃癌 疾病和诊断"
UNIQUE = "胃癌 疾病和诊断\n泰素 药物\nCT 影像检查\n肝转移 疾病和诊断"
T2 = "查 CEA 升高，诊断胃癌。"
G2 = [(2, 6, L), (11, 13, D)]  # "CEA " carries a trailing space in the gold, as 30 CCKS annotations do

# name, variant, text, gold spans, raw output, set (P, R, F1), multiset (P, R, F1) or None, span (P, R, F1) or None
CASES = [
    ("perfect, repeats listed", "paper", T, G, ALL, (1, 1, 1), (1, 1, 1), (1, 1, 1)),
    ("set vs multiset: repeats not listed", "paper", T, G, UNIQUE, (1, 1, 1), (1, 0.8, 8 / 9), (1, 1, 1)),
    ("entity not in text is a false positive", "paper", T, G, UNIQUE + "\n肺癌 疾病和诊断", (0.8, 1, 8 / 9), None, (1, 1, 1)),
    ("wrong type", "paper", T, G, "胃癌 手术\n泰素 药物\nCT 影像检查\n肝转移 疾病和诊断", (0.75, 0.75, 0.75), None,
     (0.6, 0.6, 0.6)),
    ("type outside the inventory is a false positive", "paper", T, G, "泰素 化疗药\n胃癌 疾病和诊断",
     (0.5, 0.25, 1 / 3), None, (2 / 3, 0.4, 0.5)),
    ("alias 检查", "paper", T, G, "CT 检查", (1, 0.25, 0.4), None, (1, 0.2, 1 / 3)),
    ("numbering, fence, explanation", "paper", T, G, "```\n1. 胃癌 疾病和诊断\n2. 泰素 药物\n```\n以上是全部实体。",
     (1, 0.5, 2 / 3), None, None),
    ("full-width space and colon", "paper", T, G, "胃癌\u3000疾病和诊断\n泰素：药物", (1, 0.5, 2 / 3), None, None),
    ("predicted duplicates beyond the gold", "paper", T, G, "泰素 药物\n泰素 药物", (1, 0.25, 0.4), (0.5, 0.2, 2 / 7),
     (1, 0.2, 1 / 3)),
    ("empty output", "paper", T, G, "", (0, 0, 0), (0, 0, 0), (0, 0, 0)),
    ("no type anywhere", "paper", T, G, "胃癌\n泰素", (0, 0, 0), None, None),
    ("json, a shorter string inside a gold one", "json", T, G,
     '[{"entity": "胃癌", "type": "疾病和诊断"}, {"entity": "肝", "type": "解剖部位"}]', (0.5, 0.25, 1 / 3), None,
     (2 / 3, 0.4, 0.5)),
    ("json with prose and a fence", "json", T, G,
     '结果如下：\n```json\n[{"entity": "CT", "type": "影像检查"}]\n```', (1, 0.25, 0.4), None, None),
    ("gold with a trailing space", "paper", T2, G2, "CEA 实验室检验\n胃癌 疾病和诊断", (1, 1, 1), (1, 1, 1), (1, 1, 1)),
    ("no gold, no prediction", "paper", "无特殊。", [], "无", (0, 0, 0), (0, 0, 0), (0, 0, 0)),
    ("no gold, one prediction", "paper", "无特殊。", [], "特殊 疾病和诊断", (0, 0, 0), None, (0, 0, 0)),
]


def _counts(variant, text, gold, raw) -> RecordCounts:
    p = parse_ner(raw, variant, INV, text)
    return record_counts(text, gold, list(p.pairs), TYPES, n_not_in_text=p.n_not_in_text, n_unknown_type=p.n_unknown_type)


def _prf(c: Counts):
    return (c.precision, c.recall, c.f1)


@pytest.mark.parametrize("name,variant,text,gold,raw,set_prf,multi_prf,span_prf", CASES, ids=[c[0] for c in CASES])
def test_case(name, variant, text, gold, raw, set_prf, multi_prf, span_prf):
    rc = _counts(variant, text, gold, raw)
    assert _prf(rc.set) == pytest.approx(set_prf)
    if multi_prf is not None:
        assert _prf(rc.multiset) == pytest.approx(multi_prf)
    if span_prf is not None:
        assert _prf(rc.span) == pytest.approx(span_prf)


def test_reported_counts():
    rc = _counts("paper", T, G, UNIQUE + "\n肺癌 疾病和诊断\n泰素 化疗药")
    assert (rc.n_pred, rc.n_not_in_text, rc.n_unknown_type, rc.n_gold_mentions, rc.n_gold_repeats) == (6, 1, 1, 5, 1)


def test_set_and_multiset_primitives():
    g = [("胃癌", D), ("胃癌", D), ("肝", A)]
    p = [("胃癌", D), ("肺", A)]
    assert set_counts(g, p) == Counts(1, 1, 1)
    assert multiset_counts(g, p) == Counts(1, 1, 2)


def test_overlaps_resolved_longest_first():
    assert resolve_overlaps([(0, 1, A), (0, 3, D), (2, 4, A), (5, 6, A)]) == [(0, 3, D), (5, 6, A)]
    # every occurrence is located; a string inside a longer predicted one loses
    assert locate("肝癌，肝大，肝", [("肝", A), ("肝癌", D)]) == [(0, 2, D), (3, 4, A), (6, 7, A)]
    assert spans_to_bio(5, [(0, 2, D), (3, 4, A)]) == [f"B-{D}", f"I-{D}", "O", f"B-{A}", "O"]
    with pytest.raises(ValueError):
        spans_to_bio(3, [(0, 2, D), (1, 3, A)])


def test_corpus_metrics_names_values_and_intervals():
    recs = [_counts(c[1], c[2], c[3], c[4]) for c in CASES]
    metrics, per_type = ner_metrics(recs, TYPES, seed=7, protocol="paper")
    by = {m.name: m for m in metrics}
    assert list(by) == ["precision", "recall", "f1", "precision_multiset", "recall_multiset", "f1_multiset",
                        "precision_span", "recall_span", "f1_span", "precision_span_all", "recall_span_all",
                        "f1_span_all", "f1_macro", "not_in_text_rate", "unknown_type_rate", "gold_repeat_rate",
                        "gold_nested_rate", "gold_nested_count", "extraction_failure_rate", "truncated_prompt_rate"]
    tot = sum((r.set for r in recs), Counts())
    assert by["f1"].value == pytest.approx(100 * tot.f1)
    assert by["precision"].value == pytest.approx(100 * tot.precision)
    for name in ("f1", "f1_multiset", "f1_span", "f1_macro"):
        m = by[name]
        assert m.ci_low <= m.value <= m.ci_high and m.n == len(recs)
    assert by["f1"].averaging == "corpus" and by["f1_macro"].averaging == "subjects"
    assert by["f1_span"].tokenization == "characters"
    present = [t for t in TYPES if per_type[t]["tp"] + per_type[t]["fp"] + per_type[t]["fn"]]
    assert by["f1_macro"].value == pytest.approx(sum(per_type[t]["f1"] for t in present) / len(present))
    assert per_type[P]["n"] == sum(1 for c in CASES for g in c[3] if g[2] == P)
    # seeded: the same intervals again
    again = {m.name: m for m in ner_metrics(recs, TYPES, seed=7, protocol="paper")[0]}
    assert again["f1"].ci_low == by["f1"].ci_low and again["f1"].ci_high == by["f1"].ci_high


def test_gold_repeat_rate():
    m = {x.name: x for x in ner_metrics([_counts("paper", T, G, ALL)], TYPES, seed=1)[0]}
    assert m["gold_repeat_rate"].value == pytest.approx(20.0)  # 1 of 5 mentions repeats a pair


# --- seqeval agreement ---------------------------------------------------------------------------


def _seqeval():
    return pytest.importorskip("seqeval.metrics", reason="seqeval is not installed (pip install 'chimed-eval[dev]')")


def _bio(text, gold, raw, variant="paper"):
    p = parse_ner(raw, variant, INV, text)
    g = gold_spans(text, gold, TYPES)
    pr = locate(text, p.unique, TYPES)
    return spans_to_bio(len(text), g), spans_to_bio(len(text), pr), set_counts(g, pr)


def _check_agreement(y_true, y_pred, counts: Counts):
    sm = _seqeval()
    from seqeval.scheme import IOB2

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kw in ({}, {"mode": "strict", "scheme": IOB2}):
            got = (sm.precision_score(y_true, y_pred, **kw), sm.recall_score(y_true, y_pred, **kw),
                   sm.f1_score(y_true, y_pred, **kw))
            assert got == pytest.approx(_prf(counts), abs=1e-12), kw


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_span_f1_agrees_with_seqeval_per_case(case):
    _, variant, text, gold, raw = case[:5]
    t, p, c = _bio(text, gold, raw, variant)
    _check_agreement([t], [p], c)


def test_span_f1_agrees_with_seqeval_on_the_corpus():
    trues, preds, tot = [], [], Counts()
    for _, variant, text, gold, raw, *_ in CASES:
        t, p, c = _bio(text, gold, raw, variant)
        trues.append(t)
        preds.append(p)
        tot = tot + c
    _check_agreement(trues, preds, tot)


def test_span_f1_agrees_with_seqeval_on_random_records():
    rng = random.Random(2024)
    alphabet = "胃肝癌肺术后泰素化疗CT示转移，。 A1"
    types = ("疾病和诊断", "药物", "解剖部位", "症状")  # 症状: outside the inventory
    trues, preds, tot = [], [], Counts()
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        gold = []
        for _ in range(rng.randint(0, 6)):
            if len(text) < 2:
                break
            s = rng.randrange(len(text) - 1)
            gold.append((s, rng.randint(s + 1, min(len(text), s + 6)), rng.choice(types[:3])))
        pairs = []
        for _ in range(rng.randint(0, 6)):
            if text and rng.random() < 0.8:
                s = rng.randrange(len(text))
                ent = text[s:rng.randint(s + 1, min(len(text), s + 6))]
            else:
                ent = "不存在"
            pairs.append((ent.strip() or "X", rng.choice(types)))
        raw = "\n".join(f"{e} {t}" for e, t in pairs)
        t, p, c = _bio(text, gold, raw)
        _check_agreement([t], [p], c)
        trues.append(t)
        preds.append(p)
        tot = tot + c
    _check_agreement(trues, preds, tot)
