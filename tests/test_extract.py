"""Answer extraction as a data table: text, valid letters, expected letter (None = failure)."""

import pytest

from chimed_eval.extract import extract_choice

CASES = [
    ("答案：B", "ABCD", "B"),
    ("答案:C", "ABCD", "C"),
    ("答案： d", "ABCD", "D"),
    ("Ｃ", "ABCD", "C"),  # full-width letter
    ("答案：Ａ", "ABCD", "A"),
    ("我认为是A，不对，答案是C", "ABCD", "C"),  # the last stated option
    ("正确答案为（B）", "ABCD", "B"),
    ("选B", "ABCD", "B"),
    ("B. 卵巢", "ABCD", "B"),
    ("The answer: A", "ABCD", "A"),
    ("答案：E", "ABCD", None),  # not an option of this item
    ("答案：E", "ABCDE", "E"),
    ("我不知道", "ABCD", None),
    ("", "ABCD", None),
    ("ABC transporter", "ABCD", None),  # letters inside a word are not answers
    ("A和B都不对，应选D", "ABCD", "D"),
]


@pytest.mark.parametrize("text,letters,expected", CASES)
def test_extract_choice(text, letters, expected):
    assert extract_choice(text, letters) == expected
