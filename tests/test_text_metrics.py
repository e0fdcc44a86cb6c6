"""BLEU/ROUGE in both protocols against the reference packages, on one table of cases (to 1e-9).

paper: nltk ``corpus_bleu`` on the authors' space-padded strings, the ``rouge`` package's
``get_scores(avg=True)``; standard: sacreBLEU ``zh``, rouge-score with a Chinese tokenizer.
"""

from __future__ import annotations

import math
import re
import sys
import warnings
from pathlib import Path

import pytest

from chimed_eval.metrics import text as T

# (hypothesis, reference)
CASES = [
    ("高血压患者可以适量食用党参，但要注意监测血压。", "高血压病人可以口服党参的。党参有降血压的作用。"),
    ("The quick brown fox jumps over the lazy dog.", "The quick brown dog jumps on the log."),
    ("", "建议尽快到医院就诊。"),  # empty hypothesis
    ("建议多喝水，注意休息。", ""),  # empty reference
    ("好好好好好好好好", "好的好的，好"),  # repeated characters
    ("你好！请问：发烧（38.5℃）三天了，怎么办？？", "你好，发烧三天，体温38.5度，建议查血常规。"),  # punctuation
    ("ＡＢＣ１２３，全角字符　测试", "ABC123，全角字符 测试"),  # full-width letters, digits and space
    ("服用阿司匹林100mg/d, 1,000 mg... 可以吗", "阿司匹林 100 mg 每天. 可以. 注意出血"),  # '.' splits sentences
    ("“发热”…—是症状", "发热是症状——“注意”"),  # general punctuation: the table's U+2001..U+2A6D quirk
    ("   ", "空白"),  # whitespace-only hypothesis
    ("肝功能异常 ALT 升高 2 倍", "ALT升高两倍，提示肝功能异常"),
    ("a . . b", "a b"),  # empty sentences between dots
    ("同一句话。", "同一句话。"),  # identical
    ("完全不同", "毫无关系"),  # no overlap at all
]
HYPS = [h for h, _ in CASES]
REFS = [r for _, r in CASES]
TOL = 1e-9


@pytest.fixture(scope="module")
def nltk_bleu():
    bleu = pytest.importorskip("nltk.translate.bleu_score")

    def run(hyps, refs, weights):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bleu.corpus_bleu([[T.chimed_char_pad(r)] for r in refs], [T.chimed_char_pad(h) for h in hyps],
                                    weights=weights)
    return run


# --- tokenization ---------------------------------------------------------------------------------


def test_padding_is_the_authors_and_sacrebleus_first_step():
    zh = pytest.importorskip("sacrebleu.tokenizers.tokenizer_zh")
    tok = zh.TokenizerZh()
    for h, r in CASES:
        for s in (h, r):
            assert T.sacrebleu_zh_tokens(s) == tok(s.rstrip()).split()
            assert " ".join(T.chimed_char_pad(s).split()) == " ".join(
                "".join(f" {c} " if tok._is_chinese_char(c) else c for c in s.strip()).split())
    assert T.chimed_char_pad(" ab中c ") == "ab 中 c"
    assert T.is_chinese_char("…") and T.is_chinese_char("“")  # the two-character-string quirk
    assert not T.is_chinese_char("\U00020000")  # ... which misses CJK Extension B


# --- paper protocol -------------------------------------------------------------------------------


@pytest.mark.parametrize("weights", [(1.0,), (0.5, 0.5), (0.333, 0.333, 0.334)])
def test_paper_bleu_equals_nltk_on_the_corpus(nltk_bleu, weights):
    assert math.isclose(T.paper_bleu(HYPS, REFS, weights), nltk_bleu(HYPS, REFS, weights), abs_tol=TOL)


@pytest.mark.parametrize("i", range(len(CASES)))
@pytest.mark.parametrize("weights", [(1.0,), (0.5, 0.5), (0.333, 0.333, 0.334)])
def test_paper_bleu_equals_nltk_per_case(nltk_bleu, i, weights):
    h, r = CASES[i]
    assert math.isclose(T.paper_bleu([h], [r], weights), nltk_bleu([h], [r], weights), abs_tol=TOL)


def test_script_weights_list_equals_nltk(nltk_bleu):
    ours = [T.paper_bleu(HYPS[:2], REFS[:2], w) for w in T.SCRIPT_WEIGHTS]
    theirs = nltk_bleu(HYPS[:2], REFS[:2], list(T.SCRIPT_WEIGHTS))
    assert all(math.isclose(a, b, abs_tol=TOL) for a, b in zip(ours, theirs))
    assert ours[0] == T.paper_bleu(HYPS[:2], REFS[:2], T.PAPER_BLEU_WEIGHTS["bleu2"])


@pytest.mark.parametrize("i", range(len(CASES)))
def test_paper_rouge_equals_rouge_package_per_case(i):
    Rouge = pytest.importorskip("rouge").Rouge
    h, r = (T.chimed_char_pad(x) for x in CASES[i])
    ours = T.rouge_pkg_pair(h, r)
    try:
        theirs = Rouge().get_scores(h, r, avg=True)
    except ValueError:  # the package raises on an empty hypothesis/reference
        assert ours is None
        assert T.paper_rouge_pair(*CASES[i]) == {k: 0.0 for k in T.ROUGE_PKG_KEYS}
        return
    assert ours is not None
    for k in T.ROUGE_PKG_KEYS:
        assert math.isclose(ours[k], theirs[k]["f"], abs_tol=TOL), k


def test_paper_rouge_average_equals_rouge_package_with_empties_as_zero():
    Rouge = pytest.importorskip("rouge").Rouge
    ok = [i for i in range(len(CASES)) if T.rouge_pkg_pair(T.chimed_char_pad(HYPS[i]), T.chimed_char_pad(REFS[i]))]
    assert len(ok) < len(CASES)
    theirs = Rouge().get_scores([T.chimed_char_pad(HYPS[i]) for i in ok], [T.chimed_char_pad(REFS[i]) for i in ok],
                                avg=True)
    ours = T.paper_rouge(HYPS, REFS)
    ours_ok = T.paper_rouge([HYPS[i] for i in ok], [REFS[i] for i in ok])
    for k in T.ROUGE_PKG_KEYS:
        assert math.isclose(ours_ok[k], theirs[k]["f"], abs_tol=TOL)
        assert math.isclose(ours[k] * len(CASES), theirs[k]["f"] * len(ok), abs_tol=1e-8)


def test_rouge_l_reconstruction_tie_breaking_matters_and_matches():
    """Summary-level ROUGE-L with several sentences: the union depends on which LCS is rebuilt."""
    Rouge = pytest.importorskip("rouge").Rouge
    h, r = "a b c d. b a d c. x", "a b. c d a b. d c"
    theirs = Rouge().get_scores(h, r, avg=True)["rouge-l"]["f"]
    assert math.isclose(T.rouge_pkg_pair(h, r)["rouge-l"], theirs, abs_tol=TOL)


# --- standard protocol ----------------------------------------------------------------------------


@pytest.mark.parametrize("order", [1, 2, 4])
def test_sacrebleu_zh_equals_sacrebleu(order):
    sacrebleu = pytest.importorskip("sacrebleu")
    bleu = sacrebleu.BLEU(tokenize="zh", max_ngram_order=order)
    assert math.isclose(T.sacrebleu_zh(HYPS, REFS, order), bleu.corpus_score(HYPS, [REFS]).score, abs_tol=TOL)
    for h, r in CASES:
        expected = sacrebleu.BLEU(tokenize="zh", max_ngram_order=order).corpus_score([h], [[r]]).score
        assert math.isclose(T.sacrebleu_zh([h], [r], order), expected, abs_tol=TOL), (h, r)


class _Tok:
    def __init__(self, fn):
        self.fn = fn

    def tokenize(self, text):
        return self.fn(text)


@pytest.mark.parametrize("tokenization", ["char", "jieba"])
def test_rouge_score_with_chinese_tokenizer_equals_rouge_score(tokenization):
    rs = pytest.importorskip("rouge_score.rouge_scorer")
    if tokenization == "jieba":
        pytest.importorskip("jieba")
    scorer = rs.RougeScorer(list(T.ROUGE_SCORE_KEYS), tokenizer=_Tok(T.TOKENIZATIONS[tokenization]))
    for h, r in CASES:
        theirs = scorer.score(r, h)
        ours = T.rouge_score_pair(h, r, tokenization)
        for k in T.ROUGE_SCORE_KEYS:
            assert math.isclose(ours[k], theirs[k].fmeasure, abs_tol=TOL), (tokenization, h, r, k)


def test_never_the_default_rouge_score_tokenizer_that_deletes_chinese():
    rs = pytest.importorskip("rouge_score.rouge_scorer")
    h, r = CASES[0]
    default = rs.RougeScorer(["rouge1"]).score(r, h)["rouge1"].fmeasure
    assert default == 0.0  # the trap: Chinese characters are deleted
    assert T.rouge_score_pair(h, r, "char")["rouge1"] > 0.3
    assert T.char_tokens("高血压 ABC") == ["高", "血", "压", "A", "B", "C"]
    with pytest.raises(ValueError, match="unknown tokenization"):
        T.rouge_score_pair(h, r, "default")


def test_identical_and_disjoint_texts():
    assert T.rouge_score_pair("同一句话。", "同一句话。", "char") == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    assert T.sacrebleu_zh(["同一句话，完全相同的回答。"], ["同一句话，完全相同的回答。"], 4) == pytest.approx(100.0)
    # The paper protocol counts the padding spaces as characters: disjoint Chinese texts share
    # them, so its BLEU-1 is 2/3 where sacreBLEU's is 0.
    assert T.paper_bleu(["完全不同"], ["毫无关系"], (1.0,)) == pytest.approx(2 / 3)
    assert T.sacrebleu_zh(["完全不同"], ["毫无关系"], 1) == 0.0


def test_long_texts_do_not_overflow_the_stack():
    h, r = "高血压" * 600, "血压高" * 600
    assert 0 < T.paper_rouge_pair(h, r)["rouge-l"] <= 1


def test_bleu_stats_round_trip_and_bootstrap_interval():
    stats = [T.sacrebleu_stats(h, r) for h, r in CASES]
    assert all(T.BleuStats.from_list(s.to_list()) == s for s in stats)
    value = T.sacrebleu_from_stats(T.sum_stats(stats), 2)
    lo, hi = T.bootstrap_corpus_ci(stats, lambda s: T.sacrebleu_from_stats(s, 2), seed=1, n_boot=200)
    assert lo <= value <= hi


def test_random_pairs_all_protocols_equal_the_packages(nltk_bleu):
    """Seeded random strings over an alphabet that mixes CJK, ASCII, dots, spaces and punctuation."""
    import random

    Rouge = pytest.importorskip("rouge").Rouge
    sacrebleu = pytest.importorskip("sacrebleu")
    rs = pytest.importorskip("rouge_score.rouge_scorer")
    rng = random.Random(7)
    alphabet = list("高血压糖尿病的了是，。！？") + list("ab1 .,-") + ["“", "…", "Ａ", "\u3000"]
    pairs = [("".join(rng.choices(alphabet, k=rng.randint(0, 40))), "".join(rng.choices(alphabet, k=rng.randint(1, 40))))
             for _ in range(60)]
    hyps, refs = [h for h, _ in pairs], [r for _, r in pairs]
    for w in [(1.0,), (0.5, 0.5), (0.333, 0.333, 0.334)]:
        assert math.isclose(T.paper_bleu(hyps, refs, w), nltk_bleu(hyps, refs, w), abs_tol=TOL)
    for k in (1, 2, 4):
        expected = sacrebleu.BLEU(tokenize="zh", max_ngram_order=k).corpus_score(hyps, [refs]).score
        assert math.isclose(T.sacrebleu_zh(hyps, refs, k), expected, abs_tol=TOL)
    scorer = rs.RougeScorer(list(T.ROUGE_SCORE_KEYS), tokenizer=_Tok(T.char_tokens))
    for h, r in pairs:
        ph, pr = T.chimed_char_pad(h), T.chimed_char_pad(r)
        ours = T.rouge_pkg_pair(ph, pr)
        try:
            theirs = Rouge().get_scores(ph, pr, avg=True)
        except ValueError:
            assert ours is None
        else:
            assert all(math.isclose(ours[k], theirs[k]["f"], abs_tol=TOL) for k in T.ROUGE_PKG_KEYS), (h, r)
        std = T.rouge_score_pair(h, r, "char")
        assert all(math.isclose(std[k], scorer.score(r, h)[k].fmeasure, abs_tol=TOL) for k in T.ROUGE_SCORE_KEYS)


def test_standard_protocol_without_its_packages_names_the_install(monkeypatch):
    """The standard protocol is sacreBLEU's and rouge-score's own code: without them it stops with
    the install hint (a ConfigError, one clean line in the CLI); the paper protocol needs neither."""
    from chimed_eval.core.errors import ConfigError
    from chimed_eval.metrics import text_standard

    monkeypatch.setitem(sys.modules, "sacrebleu.metrics.bleu", None)
    monkeypatch.setitem(sys.modules, "rouge_score.rouge_scorer", None)
    text_standard._bleu.cache_clear()
    text_standard._scorer.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r'chimed-eval\[text\].*sacrebleu is missing'):
            T.sacrebleu_stats("好", "好")
        with pytest.raises(ConfigError, match="rouge-score is missing"):
            T.rouge_score_pair("好", "好", "char")
        assert T.paper_bleu(["好的"], ["好的"], (1.0,)) == 1.0
    finally:
        text_standard._bleu.cache_clear()
        text_standard._scorer.cache_clear()


# --- the docs' description of the paper padding (docs/en/explanation/text-metrics.md) ----------------

PAGE = Path(__file__).resolve().parents[1] / "docs" / "en" / "explanation" / "text-metrics.md"
PADDING_CASES = ["中文", "中 文", "ab中c", "38.5℃，好", "  患者，男，45岁。 血压 120/80mmHg，“头晕”…  ",
                 "你好！请问：发烧（38.5℃）三天了，怎么办？？", "ＡＢＣ１２３，全角　测试", "a . . b", ""]


def _docs_padding_paragraph() -> str:
    text = PAGE.read_text(encoding="utf-8")
    start = text.index("**The paper padding, exactly**")
    return text[start:text.index("\n\n", start)]


def test_docs_paper_padding_procedure_taken_literally_is_the_codes_tokenization():
    """The docs say: strip; a space, the character and a space for every character of
    sacreBLEU's Chinese table; every other character kept; runs of spaces not collapsed; nltk
    counts the characters of the result. Done literally here, it must give the code's strings and
    BLEU statistics (a reader separating every character by one space gets other figures)."""
    zh = pytest.importorskip("sacrebleu.tokenizers.tokenizer_zh").TokenizerZh
    para = " ".join(_docs_padding_paragraph().split())
    for phrase in ("stripped of surrounding whitespace", "every character in sacreBLEU's Chinese table",
                   "is replaced by a space, the character and a space", "every other character",
                   "is kept as it is", "runs of spaces are not collapsed", "every space included"):
        assert phrase in para, phrase

    def readme_pad(s: str) -> str:
        return "".join(" " + c + " " if zh._is_chinese_char(c) else c for c in s.strip())

    for s in PADDING_CASES:
        assert T.chimed_char_pad(s) == readme_pad(s), s
    for h, r in zip(PADDING_CASES, PADDING_CASES[1:] + PADDING_CASES[:1]):
        assert T.paper_bleu_stats(h, r) == T.nltk_bleu_stats(readme_pad(h), readme_pad(r), T.PAPER_MAX_N)
    # its worked examples are the code's output
    examples = re.findall(r'`([^`\n]+)`\s+becomes\s+`"([^"\n]*)"`', _docs_padding_paragraph())
    assert len(examples) >= 4
    for raw, padded in examples:
        assert T.chimed_char_pad(raw) == padded, raw
    # the other reading, every character separated by a single space, is not what the code does
    naive = [" ".join(s.strip()) for s in PADDING_CASES[:4]]
    assert all(n != T.chimed_char_pad(s) for n, s in zip(naive, PADDING_CASES))
    hyps, refs = PADDING_CASES[:4], PADDING_CASES[4:8]
    ours = T.paper_bleu(hyps, refs, (1.0,))
    theirs = T.nltk_corpus_bleu(T.sum_stats([T.nltk_bleu_stats(" ".join(h.strip()), " ".join(r.strip()), 1)
                                             for h, r in zip(hyps, refs)]), (1.0,))
    assert not math.isclose(ours, theirs)


# --- references with fewer than two tokens (issue 18 item 8) -----------------------------------------


def test_a_one_token_reference_keeps_rouge_scores_zero_rouge2_and_is_counted():
    pytest.importorskip("rouge_score")
    pytest.importorskip("jieba")
    from chimed_eval.core.types import SampleScore

    # rouge-score itself: no bigram in the reference -> ROUGE-2 F = 0, even for an exact answer
    assert T.rouge_score_pair("头痛", "头痛", "jieba") == {"rouge1": 1.0, "rouge2": 0.0, "rougeL": 1.0}
    assert T.rouge_score_pair("是", "是", "char")["rouge2"] == 0.0
    assert T.rouge_score_pair("头痛", "头痛", "char")["rouge2"] == 1.0  # two characters: one bigram
    assert T.rouge2_undefined("头痛", "jieba") and not T.rouge2_undefined("头痛", "char")
    assert T.rouge2_undefined("是", "char") and T.rouge2_undefined("", "jieba")
    assert not T.rouge2_undefined("建议多喝水", "jieba")

    pairs = [("头痛", "头痛"), ("是", "是"), ("建议多喝水，注意休息。", "建议多喝水，注意休息。")]
    scores = [SampleScore(id=str(i), subject=None, prompt="问", prompt_hash="h", gold=ref, prediction=hyp, score=0.0,
                          generation=hyp, extra={"stats": T.generation_stats(hyp, ref)})
              for i, (hyp, ref) in enumerate(pairs)]
    got = {m.name: m for m in T.text_metrics(scores, seed=0)}
    assert got["rouge2_jieba_undefined_count"].value == 2.0  # 头痛 and 是 are one jieba token each
    assert got["rouge2_char_undefined_count"].value == 1.0  # only 是 is one character
    assert got["rouge2_jieba_undefined_count"].n == 3 and got["rouge2_jieba_undefined_count"].tokenization == "jieba"
    assert got["rouge2_jieba"].value == pytest.approx(100.0 / 3)  # rouge-score's zeros stay in the figure
    assert got["rouge2_char"].value == pytest.approx(200.0 / 3)
