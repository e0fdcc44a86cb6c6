"""``validate --show`` prints the gold as read, for every task kind (issue 22, item 23).

The documented "check what was read" step must show what the oracle would answer: the answer
letter(s) with their option text, each NER entity's text as its offsets cut it, the QA and
dialogue references.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chimed_eval.cli.app import main


def validate(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["validate", *argv]) == 0
    return capsys.readouterr().out


def test_mcq_gold_letters_with_their_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"question": "壁胸膜的分部不包括", "A": "肋胸膜", "B": "肺胸膜", "C": "膈胸膜", "D": "胸膜顶", "answer": "B"},
            {"question": "属于抗凝药的是", "A": "华法林", "B": "阿司匹林", "C": "肝素", "D": "布洛芬", "answer": "AC"}]
    p = tmp_path / "exam.jsonl"
    p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = validate(capsys, "--tasks", "mcq", "--task-args", f"path={p}", "--show", "2", "--variant", "generate")
    assert "gold: B  (B '肺胸膜')" in out
    assert "gold: AC  (A '华法林', C '肝素')" in out


def test_ner_gold_entities_with_their_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = {"text": "患者口服华法林后出现牙龈出血。",
           "entities": [{"start": 4, "end": 7, "type": "药物"}, {"start": 10, "end": 14, "type": "症状"}]}
    p = tmp_path / "ner.jsonl"
    p.write_text(json.dumps(rec, ensure_ascii=False) + "\n", encoding="utf-8")
    out = validate(capsys, "--tasks", "ner", "--task-args", f"path={p}", "--show", "1")
    assert "gold: 2 entities:\n  '华法林' 药物 [4, 7)\n  '牙龈出血' 症状 [10, 14)" in out


def test_qa_gold_references(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"问题": "头痛怎么办？", "回答": "建议休息，多喝水。"}]
    p = tmp_path / "qa.jsonl"
    p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = validate(capsys, "--tasks", "qa", "--task-args", f"path={p},question=问题,answer=回答", "--show", "1")
    assert "gold reference: '建议休息，多喝水。'" in out


def test_dialogue_gold_reference(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from chimed_eval.tasks.factory import build_tasks

    [built] = build_tasks(["mc-dialogue"], {}, None)
    first = built.task.load(shared_data).samples[0]
    out = validate(capsys, "--tasks", "mc-dialogue", "--data-dir", str(shared_data), "--show", "1")
    assert f"gold reference: {first.target!r}" in out


def test_gold_lines_for_each_kind() -> None:
    from chimed_eval.core.types import Sample
    from chimed_eval.reports.gold import MAX_REFERENCE_CHARS, gold_lines

    assert gold_lines(Sample("a", "q", ("x", "y"), 1)) == ["gold: B  (B 'y')"]
    assert gold_lines(Sample("n", "无特殊。", metadata={"spans": []})) == ["gold: 0 entities"]
    long = gold_lines(Sample("l", "q", target="长" * (MAX_REFERENCE_CHARS + 5)))[0]
    assert f"({MAX_REFERENCE_CHARS + 5} characters)" in long
    assert gold_lines(Sample("m", "q", target=("低盐低脂饮食", "限制钠盐"))) == [
        "gold references (2):", "  '低盐低脂饮食'", "  '限制钠盐'"]
    assert gold_lines(Sample("s", "q")) == ["gold: none (this item carries no gold answer)"]
