"""Multiple answers, chain-of-thought answers and reasoning traces, as data tables.

Expected answers are written as letters ("ABD"; None = extraction failure) and expected rules as
the names in ``chimed_eval.extract.letters.RULES``.
"""

import pytest

from chimed_eval.extract.letters import RULES, Extraction, extract_final_answer, parse_letters, split_reasoning

LIVER = ("肝脏", "脾脏", "卵巢", "肾脏", "胰腺")
DRUGS = ("Aspirin", "Metformin", "Insulin glargine", "Propranolol", "Amiodarone")

# (generation, n_options, option texts, multi, expected letters, expected rule)
COT = [
    # (a) final-answer patterns, Chinese
    ("患者右下腹痛伴转移性疼痛，首先考虑急性阑尾炎。\n答案：B", 5, (), False, "B", "final"),
    ("分析：A项是错误的，因为该药禁用于哮喘。C项正确。\n答案：C", 4, (), False, "C", "final"),
    ("首先看A选项，胰岛素可降低血糖，但本题问的是一线口服药。综合分析，最终答案是D。", 5, (), False, "D", "final"),
    ("答案：C\n解析：A项所述为慢性胃炎的表现，B项见于溃疡病，故排除A。", 5, (), False, "C", "final"),
    ("根据题干，患者出现库欣综合征表现，故选E。", 5, (), False, "E", "final"),
    ("该患者血钾偏低，所以选B。", 4, (), False, "B", "final"),
    ("综上所述，正确答案为 B。", 4, (), False, "B", "final"),
    ("正确答案是（D）", 4, (), False, "D", "final"),
    ("逐项分析后，答案为【A】。", 4, (), False, "A", "final"),
    ("**答案：E**", 5, (), False, "E", "final"),
    ("最终答案：**C**", 5, (), False, "C", "final"),
    ("答案：Ｂ", 4, (), False, "B", "final"),  # full-width letter and colon
    ("我先想到A，但考虑到患者年龄，答案应该是C。不过再看一遍题干，答案：D", 5, (), False, "D", "final"),
    ("答案不是A，因为A项是禁忌证。故选C。", 4, (), False, "C", "final"),
    ("B超提示胆囊结石，CT未见异常，故选A。", 5, (), False, "A", "final"),  # B超 and CT are not options
    ("患者为O型血，选择B。", 4, (), False, "B", "final"),
    ("答案：C，A项错误在于剂量过大。", 5, (), False, "C", "final"),  # single answer: first word only
    # several letters for a single-answer item are no answer (issue 22 item 6): the failure "several"
    ("答案：AB", 5, (), False, None, "several"),
    ("答案：A、B、C、D", 4, (), False, None, "several"),  # was read as A
    ("A、B、C、D", 4, (), False, None, "several"),  # was read as D under generate
    ("AB", 4, (), False, None, "several"),  # generate's whole answer after the prompt's 答案：
    ("The answer is A, B, C and D.", 4, (), False, None, "several"),
    ("答案：A、B、C、D", 4, (), True, "ABCD", "final"),  # a multiple-answer item keeps its group
    ("答案：C，A和B都不对", 5, (), False, "C", "final"),  # letters said to be wrong after the answer
    ("C，A和B都不对", 5, (), False, "C", "last_letter"),
    ("答案：B，A也不对", 4, (), False, "B", "final"),
    ("A、B都不对，C", 4, (), False, "C", "last_letter"),
    ("答案：F", 5, (), False, None, "none"),  # not an option of a five-option item
    ("答案：I", 10, (), False, "I", "final"),  # a stated I counts when the item has nine options or more
    # (a) final-answer patterns, English
    ("Let's think step by step. The patient has classic signs of hypothyroidism. The answer is C.", 5, (), False, "C", "final"),
    ("Let's think step by step.\nA 45-year-old man presents with chest pain.\nAnswer: B", 5, (), False, "B", "final"),
    ("Option A is tempting, but the correct answer is D because of the QT prolongation.", 5, (), False, "D", "final"),
    ("Final Answer: (E)", 5, (), False, "E", "final"),
    ("Therefore, the best option is B.", 4, (), False, "B", "final"),
    ("The answer is $\\boxed{C}$", 4, (), False, "C", "final"),
    ("\\boxed{\\text{A}}", 4, (), False, "A", "final"),
    ("the answer is b", 4, (), False, "B", "final"),  # a lowercase letter that ends the phrase
    # (a) final answer as option text
    ("该肿瘤好发于育龄女性，答案：卵巢", 5, LIVER, False, "C", "final_text"),
    ("So the answer is insulin glargine.", 5, DRUGS, False, "C", "final_text"),
    # (b) the last standalone letter
    ("A项错误，B项错误，D项也不对，C符合题意", 4, (), False, "C", "last_letter"),
    ("我认为应该是 B", 4, (), False, "B", "last_letter"),
    ("B符合题意，A项错误", 4, (), False, "B", "last_letter"),  # a letter said to be wrong is skipped
    ("D fits best; A is incorrect.", 4, (), False, "D", "last_letter"),
    ("结论：C。ABD 三项与题意不符", 5, (), False, "C", "last_letter"),  # a run is no single answer
    ("B. 卵巢", 4, (), False, "B", "last_letter"),
    ("该患者考虑为B\n\n答案：", 5, (), False, "B", "last_letter"),  # an empty final statement reads nothing
    # re-listed option blocks (gemma3-270m on CMExam) are no answer: not their last letter or text
    ("A. 喉炎\nB. 支气管扩张\nC. 喉癌\nD. 肺癌\nE. 肺癌\nE. 肺癌\nE. 肺癌", 5, ("喉炎", "支气管扩张", "喉癌", "肺癌", "肺结核"), False, None, "none"),
    ("\nA. \nB. \nC. \nD. \nE. \nE. \nE. ", 5, (), False, None, "none"),
    ("\nA.\nB.\nC.\nD.\nE.", 5, (), False, None, "none"),  # gemma3-270m under generate: was read as E
    ("答案：\nA. 喉炎\nB. 支气管扩张\nC. 喉癌", 5, (), False, None, "none"),  # a block after a marker is no answer
    ("A. 喉炎\nB. 支气管扩张\n答案：B", 5, (), False, "B", "final"),
    ("E. 流行性胸痛\nE. 流行性胸痛\nE. 流行性胸痛\nE", 5, (), False, None, "none"),  # the next label, cut
    ("D.\nE.\n\nA.\nB.\nC.\nD.\nE.\n\nA", 5, (), False, None, "none"),
    ("考虑为肺栓塞。\nC", 5, (), False, "C", "last_letter"),  # a lone letter after prose is an answer
    ("A. B. C. D. E.\nA. B. C. D. E.\nA. B. C", 5, (), False, None, "none"),
    ("患者咯血伴消瘦，考虑B。\nA. 喉炎\nB. 支气管扩张\nC. 喉癌", 5, (), False, "B", "last_letter"),
    ("考虑为支气管扩张。\n\nA. 喉炎\n\nC. 喉癌", 5, ("喉炎", "支气管扩张", "喉癌", "肺癌", "肺结核"), False, "B", "option_text"),
    ("Let's think. I think (D) is most consistent with the ECG findings.", 4, (), False, "D", "last_letter"),
    ("D is correct; A patient with this presentation needs urgent PCI.", 4, (), False, "D", "last_letter"),
    ("In summary: C", 10, (), False, "C", "last_letter"),  # "In" is a word, not option I
    ("I think the most likely diagnosis is DKA, so I would pick B", 10, (), False, "B", "last_letter"),
    ("检查示HbA1c升高、维生素B12降低，该患者应为C", 4, (), False, "C", "last_letter"),
    ("ABDOMEN CT shows free air, therefore E", 5, (), False, "E", "last_letter"),
    ("选项B和D", 4, (), True, "BD", "last_letter"),
    ("A、C、D三项均为糖皮质激素的不良反应", 5, (), True, "ACD", "last_letter"),
    # (c) option text
    ("该患者最可能的诊断部位是卵巢。", 5, LIVER, False, "C", "option_text"),
    ("Metformin would worsen the lactic acidosis, so amiodarone is the drug to avoid here... I pick amiodarone.", 5, DRUGS, False, "E", "option_text"),
    ("受累的器官包括肝脏和胰腺。", 5, LIVER, True, "AE", "option_text"),
    # (d) nothing stated
    ("这个问题我无法确定。", 4, (), False, None, "none"),
    ("Let's think step by step about the pathophysiology of DNA repair.", 5, (), False, None, "none"),
    ("", 4, (), False, None, "none"),
    ("I think I need more information.", 10, (), False, None, "none"),  # the pronoun I is never option I
    # multiple answers through the cascade
    ("分析各选项后，答案：A、B、D", 5, (), True, "ABD", "final"),
    ("正确的是A,B和D。", 5, (), True, "ABD", "final"),
    ("The correct options are B and E.", 5, (), True, "BE", "final"),
    ("答案：ACE", 5, (), True, "ACE", "final"),  # stated, so not the ACE inhibitor
    ("ACE抑制剂可引起干咳，答案：BD", 5, (), True, "BD", "final"),
    ("答案：C，A项错误", 5, (), True, "C", "final"),  # a letter said to be wrong leaves the group
]

# (text, n_options, expected letters or None)
MULTI = [
    ("ABD", 5, "ABD"),
    ("A、B、D", 5, "ABD"),
    ("A,B和D", 5, "ABD"),
    ("A，B，D", 5, "ABD"),
    ("A B D", 5, "ABD"),
    ("答案：ABD", 5, "ABD"),
    ("ＡＢＤ", 5, "ABD"),
    ("(BCDE)", 5, "BCDE"),
    ("答案：（ＡＣ）", 4, "AC"),
    ("B和D", 4, "BD"),
    ("选B、C", 4, "BC"),
    ("A及C", 4, "AC"),
    ("C", 4, "C"),
    ("答案是A/B", 4, "AB"),
    ("ABCDE", 5, "ABCDE"),
    ("ABE", 4, None),  # E is not an option of a four-option item
    ("答案：ABE", 4, None),
    ("Let's think", 5, None),
    ("ABDOMEN", 5, None),
    ("DNA", 5, None),
    ("CT", 5, None),
    ("B超", 5, None),
    ("ACE抑制剂", 5, None),  # an acronym in prose
    ("ACE", 5, "ACE"),  # the same letters as the whole answer
    ("BAD", 5, None),  # a bare run counts only in ascending order
    ("A型血患者", 5, None),
    ("无法判断", 5, None),
    ("", 5, None),
    ("A项正确，C项错误，故答案为A、D", 5, "AD"),
    ("答案：BD\n解析：A项和C项均为干扰项", 5, "BD"),
]

# (generation, start, end, trace, answer text, truncated)
SPLIT = [
    ("<think>A looks right, no, C</think>答案：B", "<think>", "</think>", "A looks right, no, C", "答案：B", False),
    ("<think>\n先排除A\n</think>\n\n答案：D", "<think>", "</think>", "先排除A", "答案：D", False),
    ("看起来是A……再想想</think>答案：C", "<think>", "</think>", "看起来是A……再想想", "答案：C", False),  # opened in the prompt
    ("<think>患者女性，考虑A，也可能是B", "<think>", "</think>", "患者女性，考虑A，也可能是B", "", True),  # cut by the budget
    ("答案：B", "<think>", "</think>", "", "答案：B", False),
    ("", "<think>", "</think>", "", "", False),
    ("<reasoning>B?</reasoning>Answer: E", "<reasoning>", "</reasoning>", "B?", "Answer: E", False),
    ("reasoning without end", "", "</think>", "reasoning without end", "", True),  # start="" opens at 0
    ("A or B ◁/think▷ The answer is B", "◁think▷", "◁/think▷", "A or B", "The answer is B", False),
]


def letters(indices):
    return None if indices is None else "".join("ABCDEFGHIJ"[i] for i in sorted(indices))


def test_cot_table_is_large_and_covers_every_rule():
    assert len(COT) >= 40
    assert {row[5] for row in COT} == set(RULES)


@pytest.mark.parametrize("text,n,options,multi,expected,rule", COT)
def test_extract_final_answer(text, n, options, multi, expected, rule):
    got = extract_final_answer(text, n, options, multi=multi)
    assert (letters(got.indices), got.rule) == (expected, rule)
    assert got.failed == (expected is None) and got.letters == expected


@pytest.mark.parametrize("text,n,expected", MULTI)
def test_parse_letters(text, n, expected):
    got = parse_letters(text, n)
    assert got is None or isinstance(got, frozenset)
    assert letters(got) == expected


@pytest.mark.parametrize("text,start,end,trace,answer,truncated", SPLIT)
def test_split_reasoning(text, start, end, trace, answer, truncated):
    assert split_reasoning(text, start, end) == (trace, answer, truncated)


# A reasoning model's generation: the trace names other letters than the answer, or never ends.
THINK = [
    ("<think>The stem mentions A first. Option A is amiodarone... no, B fits.</think>\nAnswer: D", "D", "final", False),
    ("<think>\n考虑A，但A项禁忌。答案应为C？\n</think>\n\n最终答案：E", "E", "final", False),
    ("<think>I think the answer is C, but let me check B again", None, "none", True),
]


@pytest.mark.parametrize("text,expected,rule,truncated", THINK)
def test_trace_is_removed_before_extraction(text, expected, rule, truncated):
    trace, answer, cut = split_reasoning(text)
    got = extract_final_answer(answer, 5)
    assert (letters(got.indices), got.rule, cut) == (expected, rule, truncated)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="n_options"):
        extract_final_answer("A", 11)
    with pytest.raises(ValueError, match="end marker"):
        split_reasoning("x", "<think>", "")


def test_extraction_record():
    assert Extraction(frozenset({3, 0}), "final").letters == "AD"
    assert Extraction(None, "none").failed
