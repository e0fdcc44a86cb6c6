"""The board renderer reads only results.json: published rows first, measured rows with intervals."""

from chimed_eval.cli import main
from conftest import write_exam_csv
from leaderboards.paper import TABLE_B


def test_board_shows_published_and_measured_rows(tmp_path, capsys):
    exam = write_exam_csv(tmp_path / "exam.csv", 10)
    out = tmp_path / "o"
    # a user task named like a board column is not a board task: the measured row stays blank there
    main(["run", "--no-progress", "--backend", "fake", "--model", "oracle", "--tasks", "mcq",
          "--task-args", f"path={exam}", "--output", str(out)])
    capsys.readouterr()
    assert main(["leaderboard", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| ChiMed-GPT | published | 68.29 | 52.92 | 44.50 |" in text
    measured = [line for line in text.splitlines() if line.startswith("|") and "measured" in line]
    assert len(measured) == 1 and measured[0].startswith("| fake-oracle | measured (") and "100.00" not in measured[0]
    assert len(TABLE_B) == 9
