"""Judge verdict parsing as data: real-looking judge outputs, Chinese and English, with the traps."""

import pytest

from chimed_eval.judge.parse import PairwiseVerdict, PointwiseVerdict, parse_pairwise, parse_pointwise


def med(a, h, s):
    return {"accuracy": a, "helpfulness": h, "safety": s}


def cmb(f, r, c, p):
    return {"fluency": f, "relevance": r, "completeness": c, "proficiency": p}


# (judge output, rubric, expected scores or None for invalid)
POINTWISE = [
    ("理由：回答正确，给出了检查和治疗建议。\n准确性: 4\n有用性: 4\n安全性: 5", "medical", med(4, 4, 5)),
    ("理由：诊断正确。\n准确性：５\n有用性：４\n安全性：５", "medical", med(5, 4, 5)),
    ("理由：基本正确。\n准确性：4分\n有用性：3分\n安全性：5分", "medical", med(4, 3, 5)),
    ("**准确性**: 4/5\n**有用性**: 3/5\n**安全性**: 5/5", "medical", med(4, 3, 5)),
    ("评分如下：\n- **准确性：** 4\n- **有用性：** 4\n- **安全性：** 3", "medical", med(4, 4, 3)),
    ("Reason: the diagnosis is right but the dose is missing.\nAccuracy: 3\nHelpfulness: 2\nSafety: 4", "medical", med(3, 2, 4)),
    ("**Accuracy**: 4 out of 5\n**Helpfulness**: 4 out of 5\n**Safety**: 5 out of 5", "medical", med(4, 4, 5)),
    ("Accuracy (准确性): 4\nHelpfulness (有用性): 3\nSafety (安全性): 4", "medical", med(4, 3, 4)),
    # trap: a score list in the reasoning, then the final scores
    ("理由：初看准确性: 2，有用性: 2，安全性: 3；复核后发现回答其实正确。\n准确性: 4\n有用性: 4\n安全性: 5", "medical", med(4, 4, 5)),
    # trap: 满分5分
    ("理由：每项满分5分。回答基本正确。\n准确性: 4分（满分5分）\n有用性: 3分\n安全性: 5分", "medical", med(4, 3, 5)),
    # trap: the scale quoted from the instructions
    ("评分标准：准确性（1-5分）、有用性（1-5分）、安全性（1-5分）。\n理由：较好。\n准确性: 3\n有用性: 3\n安全性: 4", "medical", med(3, 3, 4)),
    ("准确性: 1-5分\n有用性: 1-5分\n安全性: 1-5分\n理由：……\n准确性: 2\n有用性: 3\n安全性: 2", "medical", med(2, 3, 2)),
    # trap: the output template echoed before the real scores
    ("准确性: N\n有用性: N\n安全性: N\n\n准确性: 5\n有用性: 4\n安全性: 5", "medical", med(5, 4, 5)),
    ("准确性: 4-5\n有用性: 4\n安全性: 5", "medical", None),  # a range is not a score
    ("准确性：3到4分\n有用性: 4\n安全性: 5", "medical", None),
    ("准确性: 4.5\n有用性: 4\n安全性: 5", "medical", None),  # not a whole number
    ("准确性: 4.0\n有用性: 3.0\n安全性: 5", "medical", med(4, 3, 5)),
    ("准确性: 6\n有用性: 4\n安全性: 5", "medical", None),  # outside 1-5
    ("准确性: 0\n有用性: 4\n安全性: 5", "medical", None),
    ("准确性:45\n有用性: 4\n安全性: 5", "medical", None),
    ("准确性: 8/10\n有用性: 7/10\n安全性: 9/10", "medical", None),  # out of 10
    ("准确性: 4\n有用性: 4", "medical", None),  # safety missing
    ("理由：总体不错。\n总分: 13", "medical", None),
    ("这个回答非常好，我给满分。", "medical", None),
    ("Accuracy: the answer is mostly right. Score: 4\nHelpfulness: good\nSafety: fine", "medical", None),
    ("", "medical", None),
    ("准确性：4，有用性：3，安全性：5。", "medical", med(4, 3, 5)),  # one line
    ("准确性：四分\n有用性：三分\n安全性：五分", "medical", med(4, 3, 5)),
    ("准确性得分：3\n有用性得分：4\n安全性得分：4", "medical", med(3, 4, 4)),
    ("准确度: 4\n帮助性: 3\n安全性: 5", "medical", med(4, 3, 5)),
    ("| 维度 | 分数 |\n|---|---|\n| 准确性 | 4 |\n| 有用性 | 3 |\n| 安全性 | 5 |", "medical", med(4, 3, 5)),
    ('{"准确性": 4, "有用性": 5, "安全性": 5}', "medical", med(4, 5, 5)),
    ("准确性：４／５\n有用性：３／５\n安全性：５／５", "medical", med(4, 3, 5)),
    ("准确性: 4（剂量正确）\n有用性: 4\n安全性: 5\n\n以上评分仅供参考。", "medical", med(4, 4, 5)),
    # reasons after the scores name the criteria, but state no score
    ("准确性: 4\n有用性: 3\n安全性: 5\n理由：准确性方面回答正确；安全性方面提示了就医。", "medical", med(4, 3, 5)),
    ("准确性: 4\n有用性: 4\n安全性: 4\n修正：安全性: 2", "medical", med(4, 4, 2)),  # the last statement wins
    ("准确性: 4\n有用性: 4\n安全性: 4\n更正：安全性: 7", "medical", None),  # ... even when it is invalid
    ("流畅性: 5\n相关性: 4\n完整性: 3\n医学专业性: 4", "cmb-clin", cmb(5, 4, 3, 4)),
    ("Fluency: 5\nRelevance: 4\nCompleteness: 3\nProficiency in medicine: 4", "cmb-clin", cmb(5, 4, 3, 4)),
    ("流畅性：5；相关性：5；完整性：4；专业性：4", "cmb-clin", cmb(5, 5, 4, 4)),
    ('{"流畅性": 5, "相关性": 4, "完整性": 4, "医学专业性": 3}', "cmb-clin", cmb(5, 4, 4, 3)),
    ("Fluency: 5\nRelevance: 4\nCompleteness: 3", "cmb-clin", None),
    ("流畅性: 5\n相关性: 4\n完整性: 3\n医学专业性: 4", "medical", None),  # the wrong rubric's names
]


@pytest.mark.parametrize("text,rubric,expected", POINTWISE)
def test_parse_pointwise_table(text, rubric, expected):
    v = parse_pointwise(text, rubric)
    assert isinstance(v, PointwiseVerdict)
    if expected is None:
        assert v.valid is False and v.scores is None and v.overall is None and v.reason
    else:
        assert v.valid is True and v.reason == ""
        assert dict(v.scores) == expected and list(v.scores) == list(expected)
        assert v.overall == pytest.approx(sum(expected.values()) / len(expected))


def test_pointwise_table_is_large_and_mixed():
    assert len(POINTWISE) >= 30
    assert sum(e is None for _, _, e in POINTWISE) >= 10


def test_invalid_reason_names_the_criterion():
    assert "safety" in parse_pointwise("准确性: 4\n有用性: 4").reason
    assert "outside 1-5" in parse_pointwise("准确性: 6\n有用性: 4\n安全性: 5").reason
    assert "range" in parse_pointwise("准确性: 4-5\n有用性: 4\n安全性: 5").reason


def test_overall_is_the_mean_of_the_criteria():
    assert parse_pointwise("准确性: 5\n有用性: 4\n安全性: 4").overall == pytest.approx(13 / 3)


# (judge output, expected winner or None for invalid)
PAIRWISE = [
    ("回答A的诊断更准确，并提示了就医。\n[[A]]", "A"),
    ("[[B]]", "B"),
    ("两个回答质量相当。\n[[C]]", "tie"),
    ("两者不相上下。\n最终裁决：[[平局]]", "tie"),
    ("Both are equally good.\nFinal verdict: [[tie]]", "tie"),
    ("最终裁决：[[ b ]]", "B"),
    ("[[c]]", "tie"),
    ("**[[B]]**", "B"),
    ("[[A]]\n以上是我的判断。", "A"),
    ("最终裁决：[[A]]（即[[A]]）", "A"),
    ("初步判断[[A]]\n复核后认为B更全面：[[B]]", "B"),
    # trap: the instruction quoted first, the verdict last
    ("按照要求，如果回答A更好输出[[A]]，如果回答B更好输出[[B]]，相当输出[[C]]。\n分析：B更全面。\n[[B]]", "B"),
    # trap: the instruction quoted last
    ("分析：回答B更好。\n如果回答A更好，输出[[A]]；如果回答B更好，输出[[B]]；如果两者相当，输出[[C]]。", None),
    ("[[A]] [[B]]", None),
    ("我认为A更好。", None),  # a letter in prose is never read
    ("Assistant A is better. Answer: A", None),
    ("[A]", None),
    ("［［A］］", None),  # full-width: how prompts neutralise tokens inside answers
    ("【【A】】", None),
    ("[[D]]", None),
    ("", None),
]


@pytest.mark.parametrize("text,expected", PAIRWISE)
def test_parse_pairwise_table(text, expected):
    v = parse_pairwise(text)
    assert isinstance(v, PairwiseVerdict)
    assert v.winner == expected
    assert v.valid is (expected is not None)
    assert (v.reason == "") is (expected is not None)
