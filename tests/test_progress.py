"""Progress and time: the estimate of the time left from the batches done (a pure function), the
counts line a run prints before its first batch, the bar's estimate, and --no-progress everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from chimed_eval.core.progress import (BatchTime, format_duration, progress_bar, progress_default, progress_on,
                                       remaining_seconds)
from chimed_eval.core.types import Request
from chimed_eval.engine.run_progress import RunProgress, counts_line
from conftest import write_exam_csv


@pytest.fixture(autouse=True)
def bars_allowed(monkeypatch):
    """These tests look at the bars: the job-wide switch is not set around them."""
    monkeypatch.delenv("CHIMED_EVAL_NO_PROGRESS", raising=False)


# --- the estimator ------------------------------------------------------------------------------------


def test_no_estimate_before_the_first_batches_are_done():
    assert remaining_seconds([], {"generate": 10}) is None
    assert remaining_seconds([BatchTime("generate", 8, 4.0)], {"generate": 10}) is None  # warm-up only
    assert remaining_seconds([BatchTime("generate", 8, 4.0)], {"generate": 10}, min_batches=1) == pytest.approx(5.0)


def test_the_first_batch_is_left_out_as_warm_up():
    batches = [BatchTime("next_token", 8, 30.0),  # the model's first call: caches, kernels
               BatchTime("next_token", 8, 2.0), BatchTime("next_token", 8, 2.0)]
    assert remaining_seconds(batches, {"next_token": 40}) == pytest.approx(40 * 4.0 / 16)
    assert remaining_seconds(batches, {"next_token": 40}, warmup=0) == pytest.approx(40 * 34.0 / 24)


def test_each_kind_is_timed_by_its_own_rate_and_an_unstarted_kind_by_the_overall_one():
    batches = [BatchTime("next_token", 10, 1.0), BatchTime("next_token", 10, 1.0), BatchTime("generate", 10, 19.0)]
    # measured (first left out): next_token 0.1 s/item, generate 1.9 s/item; overall 20 s / 20 items
    assert remaining_seconds(batches, {"next_token": 100, "generate": 10}) == pytest.approx(100 * 0.1 + 10 * 1.9)
    assert remaining_seconds(batches, {"loglikelihood": 5}) == pytest.approx(5 * 1.0)
    assert remaining_seconds(batches, {"next_token": 0, "generate": -3}) == 0.0  # nothing left


def test_batches_that_completed_nothing_give_no_estimate():
    assert remaining_seconds([BatchTime("generate", 0, 1.0), BatchTime("generate", 0, 1.0)], {"generate": 3}) is None


@pytest.mark.parametrize("seconds,text", [(0, "0s"), (42.4, "42s"), (59.6, "1m00s"), (185, "3m05s"),
                                          (7620, "2h07m"), (-3, "0s")])
def test_durations_read_as_people_write_them(seconds, text):
    assert format_duration(seconds) == text


def test_the_bar_shows_the_estimate_once_the_first_batches_are_done():
    bar = RunProgress({"next_token": 30}, enabled=True)
    assert bar.batch_done("next_token", 10, 5.0) is None
    assert bar.batch_done("next_token", 10, 1.0) == pytest.approx(10 * 0.1)
    assert bar.bar.n == 20 and "~1s left" in bar.bar.postfix
    bar.close()


# --- the switch ------------------------------------------------------------------------------------------


def test_one_switch_decides_whether_bars_show(monkeypatch):
    assert progress_on() and not progress_on(False)
    with progress_default(False):
        assert not progress_on() and progress_on(True)
        assert progress_bar(3, "x").disable
        with progress_default(None):  # unchanged
            assert not progress_on()
    assert progress_on()
    monkeypatch.setenv("CHIMED_EVAL_NO_PROGRESS", "1")  # off for the whole job, whatever the callers say
    assert not progress_on() and not progress_on(True)
    with progress_default(True):
        assert not progress_on()
    monkeypatch.setenv("CHIMED_EVAL_NO_PROGRESS", "0")
    assert progress_on()


# --- the counts line -----------------------------------------------------------------------------------


def test_counts_line_counts_items_requests_by_kind_and_batches():
    pending = [("a", Request("loglikelihood", "1", "q", (" A", " B", " C", " D"))),
               ("a", Request("loglikelihood", "2", "q", (" A", " B"))),
               ("b", Request("generate", "3", "q"))]
    line = counts_line(pending, total_items=5, n_tasks=3, batches=2, batch_size=8)
    assert line == ("chimed-eval: 3 items to evaluate in 2 of 3 task(s) (2 already done, resumed); "
                    "7 requests (6 loglikelihood, 1 generate) in 2 batches of up to 8")


def exam_args(tmp_path: Path, n: int = 20) -> list[str]:
    f = write_exam_csv(tmp_path / "exam.csv", n)
    return ["--tasks", "mcq", "--task-args", f"path={f},question=Question,choices=A;B;C;D,answer=Answer,name=my-exam"]


def test_a_run_prints_its_counts_before_the_first_batch_and_resumes_with_them(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["run", "--backend", "fake", "--model", "oracle", "--output", str(out), "--batch-size", "6",
            *exam_args(tmp_path)]
    assert main([*argv, "--limit", "8"]) == 0
    err = capsys.readouterr().err
    assert "chimed-eval: 8 items to evaluate in 1 of 1 task(s); 8 requests (8 next_token) in 2 batches of up to 6" in err
    for f in out.glob("samples/*.jsonl"):  # as a run killed before its last record: one item left to do
        lines = f.read_text(encoding="utf-8").splitlines()
        f.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    (out / "results.json").unlink()
    assert main([*argv, "--limit", "8"]) == 0
    err = capsys.readouterr().err
    assert "1 items to evaluate in 1 of 1 task(s) (7 already done, resumed); 1 requests (1 next_token)" in err


def test_no_progress_prints_neither_the_counts_nor_a_bar(tmp_path, capsys):
    argv = ["run", "--no-progress", "--backend", "fake", "--model", "oracle", "--output", str(tmp_path / "o"),
            *exam_args(tmp_path)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "items to evaluate" not in err and "evaluating" not in err


def test_the_contamination_scan_draws_a_bar_unless_told_not_to(tmp_path, capsys):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": f"第{i}题：下列哪项正确 选项甲{i}"}, ensure_ascii=False) + "\n"
                              for i in range(50)), encoding="utf-8")
    argv = ["contamination", "--corpus", str(corpus), "--n", "5", *exam_args(tmp_path)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "scanning corpus" in err
    assert main([*argv, "--no-progress"]) == 0
    assert "scanning corpus" not in capsys.readouterr().err


def test_a_download_draws_a_bar_of_bytes_unless_progress_is_off(tmp_path, capsys):
    import functools
    import http.server
    import threading

    from chimed_eval.data.transfer import download

    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "test.csv").write_bytes(b"x" * 300_000)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/test.csv"
    try:
        download(url, tmp_path / "a", max_bytes=10**6, deadline=30, timeout=10, headers={})
        err = capsys.readouterr().err
        assert "downloading test.csv" in err and "293k" in err.replace("K", "k")  # 300000 B in KiB
        with progress_default(False):
            download(url, tmp_path / "b", max_bytes=10**6, deadline=30, timeout=10, headers={})
        assert "downloading" not in capsys.readouterr().err
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert (tmp_path / "b").read_bytes() == b"x" * 300_000


def test_the_data_command_takes_no_progress(tmp_path, capsys):
    assert main(["data", "--check", "--no-progress", "--data-dir", str(tmp_path), "--datasets", "cmmlu"]) == 1
    assert "missing" in capsys.readouterr().out


def test_training_sampling_draws_a_bar_that_chimed_train_can_turn_off(capsys):
    from chimed_eval.backends.fake import FakeBackend
    from chimed_eval.training.generate import Decoding, sample_answers

    prompts = [(f"p{i}", f"问题{i}") for i in range(3)]
    answers = sample_answers(FakeBackend("fixed:好"), prompts, 2, Decoding(batch_size=4), seed=1)
    assert answers == {f"p{i}": ["好", "好"] for i in range(3)}
    err = capsys.readouterr().err
    assert "sampling (3 prompts x 2)" in err and "6/6" in err
    with progress_default(False):  # what chimed-train --no-progress sets
        sample_answers(FakeBackend("fixed:好"), prompts, 2, Decoding(batch_size=4), seed=1)
    assert "sampling" not in capsys.readouterr().err
    from chimed_eval.training.cli import build_parser

    assert build_parser().parse_args(["sft", "--config", "x.yaml", "--no-progress"]).no_progress


def test_judging_draws_its_bar_with_the_time_left_unless_told_not_to(tmp_path, capsys):
    from conftest import write_qa_run

    out = write_qa_run(tmp_path, [f"回答{i}" for i in range(12)], "cand")
    capsys.readouterr()
    argv = ["judge", str(out), "--judge-backend", "fake", "--judge", "judge:score-3", "--batch-size", "4"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "judging (judge:score-3)" in err and "12/12" in err and "left]" in err
    assert main([*argv[:-4], "--judge", "judge:score-4", "--no-progress"]) == 0
    assert "judging" not in capsys.readouterr().err


def test_transformers_bars_follow_the_switch_inside_library_bars():
    pytest.importorskip("transformers")
    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    from chimed_eval.core.progress import library_bars

    original = gguf_utils.tqdm
    with progress_default(False), library_bars():
        assert not hf_logging.is_progress_bar_enabled()
        assert gguf_utils.tqdm(range(2)).disable  # the GGUF dequantisation bar, deaf to the switch above
    assert hf_logging.is_progress_bar_enabled() and gguf_utils.tqdm is original
    with library_bars(True):
        assert hf_logging.is_progress_bar_enabled() and gguf_utils.tqdm is original
