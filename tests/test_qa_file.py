"""`qa`: a user's own open-QA file runs without Python and is scored with the standard metrics
(issue 15: a new kind of task is one file)."""

from __future__ import annotations

import json

from chimed_eval.cli.app import main


def _metrics(out) -> dict[str, float]:
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return {m["name"]: m["value"] for m in res["tasks"]["my-qa"]["metrics"]}


def test_own_open_qa_file_runs_scores_and_rescores(tmp_path, capsys):
    rows = [{"问题": f"第{i}个问题：头痛怎么办？", "回答": f"建议休息{i}天，多喝水。", "备选": "请就医。" if i % 2 else ""}
            for i in range(6)]
    f = tmp_path / "qa.jsonl"
    f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "o"
    args = f"path={f},question=问题,answer=回答;备选,name=my-qa"
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "oracle", "--tasks", "qa",
                 "--task-args", args, "--output", str(out)]) == 0
    m = _metrics(out)
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert res["tasks"]["my-qa"]["n"] == 9  # 6 first answers + 3 second ones
    assert all(abs(m[k] - 100.0) < 1e-9 for k in ("sacrebleu4_cum", "rougeL_char", "paper_bleu1_cum"))
    assert main(["score", str(out)]) == 0
    assert _metrics(out) == m
    # a bad row names its file, line and field
    f.write_text(f.read_text(encoding="utf-8") + json.dumps({"回答": "x"}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "oracle", "--tasks", "qa",
                 "--task-args", args, "--output", str(tmp_path / "o2")]) == 2
    assert f"{f.name}:7: field '问题'" in capsys.readouterr().err
