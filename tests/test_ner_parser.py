"""The NER output parser (chimed_eval/extract/ner.py) as a data table: one row per rule.

Each row: (name, variant, raw output, expected pairs in output order with duplicates, tags that
the decisions must show). A decision's tags are its action, its reason and its notes (the part
before ':'), so every rule is checked to be visible in the per-sample record.
"""

from __future__ import annotations

import pytest

from chimed_eval.extract.ner import TypeInventory, parse_ner, render_answer

INV = TypeInventory(
    ("疾病和诊断", "影像检查", "实验室检验", "手术", "药物", "解剖部位"),
    {"检查": "影像检查", "检验": "实验室检验", "疾病": "疾病和诊断"},
)
TEXT = ("患者因胃癌行胃癌根治术，术后予泰素化疗，复查CT示肝转移。诊断：高热待查：肺部感染。"
        "“LEEP”术后，查CA72.4 升高。原发性高血压3级 极高危。1）脾破裂。")

D, A, P, S, J = "疾病和诊断", "解剖部位", "药物", "手术", "影像检查"

CASES = [
    # name, variant, raw, expected pairs, tags that must appear
    ("plain", "paper", "胃癌 疾病和诊断\n泰素 药物", [("胃癌", D), ("泰素", P)], {"kept"}),
    ("full-width space", "paper", "胃癌\u3000疾病和诊断", [("胃癌", D)], {"kept"}),
    ("tab", "paper", "胃癌\t疾病和诊断", [("胃癌", D)], {"kept"}),
    ("several spaces", "paper", "胃癌    疾病和诊断", [("胃癌", D)], {"kept"}),
    ("full-width colon", "paper", "胃癌：疾病和诊断", [("胃癌", D)], {"kept"}),
    ("half-width colon", "paper", "泰素: 药物", [("泰素", P)], {"kept"}),
    ("comma", "paper", "泰素，药物", [("泰素", P)], {"kept"}),
    ("entity with inner space", "paper", "原发性高血压3级 极高危 疾病和诊断", [("原发性高血压3级 极高危", D)], {"kept"}),
    ("entity with colon", "paper", "高热待查：肺部感染 疾病和诊断", [("高热待查：肺部感染", D)], {"kept"}),
    ("numbering 1.", "paper", "1. 胃癌 疾病和诊断\n2. 泰素 药物", [("胃癌", D), ("泰素", P)], {"numbering"}),
    ("numbering 1、 and 1)", "paper", "1、胃癌 疾病和诊断\n2) 泰素 药物", [("胃癌", D), ("泰素", P)], {"numbering"}),
    ("numbering （1） [1] ①", "paper", "（1）胃癌 疾病和诊断\n[2] 泰素 药物\n③ CT 影像检查",
     [("胃癌", D), ("泰素", P), ("CT", J)], {"numbering"}),
    ("bullets", "paper", "- 胃癌 疾病和诊断\n* 泰素 药物\n• 肝 解剖部位", [("胃癌", D), ("泰素", P), ("肝", A)], {"numbering"}),
    ("decimal is not numbering", "paper", "CA72.4 实验室检验", [("CA72.4", "实验室检验")], {"kept"}),
    ("numbering 1）", "paper", "1）脾破裂 疾病和诊断", [("脾破裂", D)], {"numbering"}),
    ("digits before 、 are not numbering", "paper", "7、8、9组淋巴结 解剖部位", [("7、8、9组淋巴结", A)], {"not_in_text"}),
    ("markdown bold", "paper", "**胃癌** 疾病和诊断", [("胃癌", D)], {"kept"}),
    ("code fence", "paper", "```\n胃癌 疾病和诊断\n```", [("胃癌", D)], {"code_fence"}),
    ("labelled 实体：X 类型：Y", "paper", "实体：胃癌，类型：疾病和诊断\n实体: 泰素 类型: 药物",
     [("胃癌", D), ("泰素", P)], {"labeled"}),
    ("labelled reversed", "paper", "类型：药物，实体：泰素", [("泰素", P)], {"labeled"}),
    ("X（类型）", "paper", "胃癌（疾病和诊断）\n泰素(药物)", [("胃癌", D), ("泰素", P)], {"paren"}),
    ("trailing explanation after the type", "paper", "胃癌 疾病和诊断（原发病灶）\n泰素 药物，用于化疗",
     [("胃癌", D), ("泰素", P)], {"trailing_text"}),
    ("explanation lines", "paper", "以下是文本中的实体：\n胃癌 疾病和诊断\n以上实体均来自原文。",
     [("胃癌", D)], {"explanation"}),
    ("English prose", "paper", "Here are the entities I found in the text\n胃癌 疾病和诊断", [("胃癌", D)], {"explanation"}),
    ("empty lines", "paper", "\n胃癌 疾病和诊断\n\n\n泰素 药物\n", [("胃癌", D), ("泰素", P)], {"empty"}),
    ("duplicate mentions", "paper", "胃癌 疾病和诊断\n胃癌 疾病和诊断\n泰素 药物",
     [("胃癌", D), ("胃癌", D), ("泰素", P)], {"duplicate"}),
    ("alias 检查 -> 影像检查", "paper", "CT 检查", [("CT", J)], {"alias"}),
    ("alias 疾病 -> 疾病和诊断", "paper", "胃癌 疾病", [("胃癌", D)], {"alias"}),
    ("unknown type kept as a false positive", "paper", "发热 症状", [("发热", "症状")], {"unknown_type"}),
    ("not in text kept as a false positive", "paper", "肺癌 疾病和诊断", [("肺癌", D)], {"not_in_text"}),
    ("no type", "paper", "胃癌", [], {"no_type"}),
    ("none stated", "paper", "无", [], {"none_stated"}),
    ("type header lines", "paper", "疾病和诊断：\n胃癌\n肝转移\n【药物】\n泰素",
     [("胃癌", D), ("肝转移", D), ("泰素", P)], {"type_header", "header_type"}),
    ("grouped by type", "paper", "疾病和诊断：胃癌、肝转移\n药物：泰素", [("胃癌", D), ("肝转移", D), ("泰素", P)],
     {"grouped_by_type"}),
    ("quotes stripped when only the bare string is in the text", "paper", "“胃癌” 疾病和诊断", [("胃癌", D)], {"quotes"}),
    ("quotes kept when they are in the text", "paper", "“LEEP”术 手术", [("“LEEP”术", S)], {"kept"}),
    ("chatty markdown answer", "paper",
     "好的，以下是文本中的医学实体：\n\n*   **胃癌** 疾病和诊断\n*   **CT**：影像检查\n\n希望这些信息对您有帮助！",
     [("胃癌", D), ("CT", J)], {"explanation", "numbering", "empty"}),
    # json variant
    ("json list", "json", '[{"entity": "胃癌", "type": "疾病和诊断"}, {"entity": "泰素", "type": "药物"}]',
     [("胃癌", D), ("泰素", P)], {"kept"}),
    ("json in a fence with prose", "json",
     '好的，结果如下：\n```json\n[{"实体": "胃癌", "类型": "疾病和诊断"}]\n```\n希望对你有帮助。', [("胃癌", D)],
     {"explanation"}),
    ("json pairs", "json", '[["胃癌", "疾病和诊断"], ["CT", "检查"]]', [("胃癌", D), ("CT", J)], {"alias"}),
    ("json unterminated (token cap)", "json", '[{"entity": "胃癌", "type": "疾病和诊断"}, {"entity": "泰素", "type": "药物"}, {"ent',
     [("胃癌", D), ("泰素", P)], {"cut_off"}),
    ("json grouped by type", "json", '{"疾病和诊断": ["胃癌", "肝转移"], "药物": ["泰素"]}',
     [("胃癌", D), ("肝转移", D), ("泰素", P)], {"kept"}),
    ("json entities wrapper", "json", '{"entities": [{"entity": "胃癌", "label": "疾病和诊断"}]}', [("胃癌", D)], {"kept"}),
    ("json objects one per line", "json", '{"entity": "胃癌", "type": "疾病和诊断"}\n{"entity": "泰素", "type": "药物"}',
     [("胃癌", D), ("泰素", P)], {"kept"}),
    ("json duplicate / unknown type / not in text", "json",
     '[{"entity": "胃癌", "type": "疾病和诊断"}, {"entity": "胃癌", "type": "疾病和诊断"}, '
     '{"entity": "发热", "type": "症状"}, {"entity": "肺癌", "type": "疾病和诊断"}]',
     [("胃癌", D), ("胃癌", D), ("发热", "症状"), ("肺癌", D)], {"duplicate", "unknown_type", "not_in_text"}),
    ("json item without a type", "json", '[{"entity": "胃癌"}]', [], {"no_type"}),
    ("json variant falls back to lines", "json", "胃癌 疾病和诊断", [("胃癌", D)], {"kept"}),
]


def _tags(parse) -> set[str]:
    tags: set[str] = set()
    for d in parse.decisions:
        tags.add(d.action)
        if d.reason:
            tags.add(d.reason)
        tags.update(n.split(":", 1)[0] for n in d.notes)
    return tags


@pytest.mark.parametrize("name,variant,raw,pairs,tags", CASES, ids=[c[0] for c in CASES])
def test_parser_rule(name, variant, raw, pairs, tags):
    p = parse_ner(raw, variant, INV, TEXT)
    assert list(p.pairs) == pairs
    assert tags <= _tags(p), (tags, _tags(p), p.decisions)
    # every output line (or JSON item) is accounted for in the decisions
    assert p.decisions or not raw.strip()
    d = p.to_dict()
    assert d["format"] in ("lines", "json", "lines-fallback") and isinstance(d["decisions"], list)


def test_counts_and_failure_flags():
    p = parse_ner("胃癌 疾病和诊断\n胃癌 疾病和诊断\n发热 症状\n肺癌 疾病和诊断\n随便写的", "paper", INV, TEXT)
    assert p.unique == (("胃癌", D), ("发热", "症状"), ("肺癌", D))
    assert (p.n_duplicates, p.n_unknown_type, p.n_not_in_text, p.n_dropped) == (1, 1, 2, 1)
    assert not p.failed
    assert parse_ner("随便写的", "paper", INV, TEXT).failed            # content, nothing readable
    assert not parse_ner("无", "paper", INV, TEXT).failed               # "none" is an answer
    assert not parse_ner("", "paper", INV, TEXT).failed                # empty output: no entities


def test_not_in_text_is_counted_once_per_pair():
    p = parse_ner("肺癌 疾病和诊断\n肺癌 疾病和诊断", "paper", INV, TEXT)
    assert p.n_not_in_text == 1 and p.n_duplicates == 1


@pytest.mark.parametrize("variant", ["paper", "json"])
def test_render_then_parse_roundtrips(variant):
    pairs = [("胃癌", D), ("原发性高血压3级 极高危", D), ("高热待查：肺部感染", D), ("CA72.4", "实验室检验"),
             ("“LEEP”术", S), ("胃癌", D)]
    p = parse_ner(render_answer(pairs, variant), variant, INV, TEXT)
    assert list(p.pairs) == pairs


def test_type_inventory_rejects_aliases_to_unknown_types():
    with pytest.raises(ValueError):
        TypeInventory(("药物",), {"检查": "影像检查"})


def test_latin_types_match_case_insensitively():
    inv = TypeInventory(("Disease", "Drug"))
    p = parse_ner("aspirin drug\ngastric cancer DISEASE", "paper", inv, "gastric cancer treated with aspirin")
    assert list(p.pairs) == [("aspirin", "Drug"), ("gastric cancer", "Disease")]
    assert all(any(n.startswith("case:") for n in d.notes) for d in p.decisions)


@pytest.mark.parametrize("variant", ["paper", "json"])
def test_a_leading_star_or_dash_without_a_space_is_part_of_the_entity(variant):
    """``*0302`` (an HLA allele) and ``-DR4`` are entities, not bullets: a bullet needs a space after it."""
    inv = TypeInventory(("基因",))
    text = "HLA-DQB1*0302与-DR4等位基因阳性"
    pairs = [("*0302", "基因"), ("-DR4", "基因")]
    raw = render_answer(pairs, variant)
    p = parse_ner(raw, variant, inv, text)
    assert list(p.pairs) == pairs
    assert p.n_not_in_text == 0 and not any(n.startswith("numbering") for d in p.decisions for n in d.notes)
    # with a space after it, the same character is still a bullet
    bullets = parse_ner("* *0302 基因\n- -DR4 基因\n• HLA-DQB1 基因", "paper", inv, text)
    assert list(bullets.pairs) == [*pairs, ("HLA-DQB1", "基因")]
