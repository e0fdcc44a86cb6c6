"""Cost and latency (issue 27): every request's tokens and latency are recorded apart from the
samples, summarised per task and per run with a price, and ``--max-cost`` / ``--max-tokens`` stop
scheduling cleanly (exit 3, how far it got); the same command with a higher budget resumes to the
results of an unbudgeted run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chimed_eval.cli.app import main
from chimed_eval.core.errors import BUDGET_EXIT, ConfigError
from chimed_eval.runs.usage import Budget, parse_price, percentile, summarise
from conftest import write_exam_csv
from test_openai_backend import FaultServer, margs


@pytest.fixture
def server():
    s = FaultServer(faults=False)
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def no_env_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def api_run(out: Path, exam: Path, url: str, *extra: str) -> int:
    return main(["run", "--no-progress", "--backend", "openai", "--model", "test-model", "--tasks", "mcq",
                 "--task-args", f"path={exam}", "--variant", "generate", "--batch-size", "4", "--output", str(out),
                 "--no-cache", "--model-args", margs(url), "--price", "in=2,out=10", *extra])


def comparable(out: Path) -> tuple[dict, bytes]:
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    res.pop("created")
    return res, (out / "samples" / "mcq.jsonl").read_bytes()


def test_api_run_reports_tokens_latency_percentiles_and_cost(server, tmp_path, capsys):
    exam = write_exam_csv(tmp_path / "exam.csv", 10)
    out = tmp_path / "o"
    assert api_run(out, exam, server.url) == 0
    printed = capsys.readouterr().out
    assert "usage (price: 2/10 USD per million in/out tokens, --price in=2,out=10)" in printed
    lines = [json.loads(x) for x in (out / "usage" / "mcq.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 10 and len({x["id"] for x in lines}) == 10
    # the stub server's usage: prompt_tokens = characters of the prompt, completion = of the answer
    recs = {r["id"]: r for r in map(json.loads, (out / "samples" / "mcq.jsonl").read_text().splitlines())}
    for x in lines:
        assert x["prompt_tokens"] == len(recs[x["id"]]["prompt"]) and x["completion_tokens"] == len(recs[x["id"]]["generation"])
        assert x["latency_s"] > 0 and x["ttft_s"] is None and not x["cached"]  # not streamed
    doc = json.loads((out / "usage.json").read_text(encoding="utf-8"))
    run = doc["run"]
    prompt, completion = sum(x["prompt_tokens"] for x in lines), sum(x["completion_tokens"] for x in lines)
    assert (run["prompt_tokens"], run["completion_tokens"]) == (prompt, completion)
    assert run["cost_usd"] == pytest.approx((2 * prompt + 10 * completion) / 1e6)
    lat = sorted(x["latency_s"] for x in lines)
    assert run["latency_p50_s"] == pytest.approx((lat[4] + lat[5]) / 2, abs=1e-6)
    assert lat[0] <= run["latency_p95_s"] <= lat[-1] and run["requests_per_s"] > 0
    assert doc["tasks"]["mcq"]["cost_usd"] == run["cost_usd"]
    import chimed_eval

    assert chimed_eval.read_run(out).usage == doc  # the Python API reads the usage with the figures
    from chimed_eval.reports.html import render_html

    page = render_html(out)  # and the HTML report shows it
    assert "<h2>Cost and latency</h2>" in page and f"{run['cost_usd']:.6f}" in page and "--price in=2,out=10" in page
    assert "samples" not in json.dumps(doc)  # nothing of the answers in the usage
    # the samples carry no latency: the records stay byte-identical however a run is scheduled
    assert "latency" not in (out / "samples" / "mcq.jsonl").read_text()


def test_max_cost_stops_and_a_higher_budget_resumes_to_the_unbudgeted_results(server, tmp_path, capsys):
    exam = write_exam_csv(tmp_path / "exam.csv", 12)
    assert api_run(tmp_path / "whole", exam, server.url) == 0
    full_cost = json.loads((tmp_path / "whole" / "usage.json").read_text())["run"]["cost_usd"]
    capsys.readouterr()
    out = tmp_path / "budgeted"
    # a third of the full cost: stops after a batch or two of four items, exit 3, says how far
    assert api_run(out, exam, server.url, "--max-cost", f"{full_cost / 3:.10f}") == BUDGET_EXIT
    err = capsys.readouterr().err
    assert "--max-cost" in err and "reached" in err and "items (mcq " in err and "higher budget to resume" in err
    done = len((out / "samples" / "mcq.jsonl").read_text().splitlines())
    assert 4 <= done < 12 and f"after {done}/12 items" in err and not (out / "results.json").exists()
    calls = server.stats.attempts.copy()
    # the same budget again: already spent, stops before any request
    assert api_run(out, exam, server.url, "--max-cost", f"{full_cost / 3:.10f}") == BUDGET_EXIT
    assert server.stats.attempts == calls
    # a higher budget resumes (the budget is not a run setting: resume is not refused)
    assert api_run(out, exam, server.url, "--max-cost", f"{full_cost * 2:.10f}") == 0
    assert comparable(out) == comparable(tmp_path / "whole")
    lines = (out / "usage" / "mcq.jsonl").read_text().splitlines()
    assert len(lines) == 12 and len({json.loads(x)["id"] for x in lines}) == 12  # none counted twice


def test_max_tokens_on_the_fake_backend_and_bad_budgets(tmp_path, capsys):
    exam = write_exam_csv(tmp_path / "exam.csv", 9)
    base = ["run", "--no-progress", "--backend", "fake", "--model", "random", "--tasks", "mcq",
            "--task-args", f"path={exam}", "--variant", "generate", "--batch-size", "3"]
    out = tmp_path / "o"
    assert main([*base, "--output", str(out), "--max-tokens", "1"]) == BUDGET_EXIT
    assert "--max-tokens 1 reached" in capsys.readouterr().err
    assert len((out / "samples" / "mcq.jsonl").read_text().splitlines()) == 3
    assert main([*base, "--output", str(out)]) == 0  # no budget: runs to the end
    assert main([*base, "--output", str(tmp_path / "x"), "--max-cost", "1"]) == 2
    assert "--max-cost needs a price" in capsys.readouterr().err
    for bad in ("in=1", "in=1,out=-2", "in=1,out=2,in=3", "x=1,out=2", "in=nan,out=1"):
        with pytest.raises(ConfigError, match="--price"):
            parse_price(bad)
    with pytest.raises(ConfigError, match="--max-cost"):
        Budget(max_cost=-1).check(parse_price("in=1,out=1"))


def test_gpt_presets_have_default_prices_and_summaries_skip_cached_requests():
    from chimed_eval.runs.usage import run_price

    assert run_price("gpt-4", None).input == 30.0 and run_price("gpt-4", "in=1,out=1").input == 1.0
    assert run_price("some-local-model", None) is None
    lines = [{"prompt_tokens": 10, "completion_tokens": 5, "latency_s": 1.0, "busy_s": 1.0, "cached": False},
             {"prompt_tokens": 10, "completion_tokens": 5, "latency_s": 3.0, "busy_s": 1.0, "cached": False},
             {"prompt_tokens": None, "completion_tokens": None, "latency_s": None, "busy_s": 0.0, "cached": True}]
    s = summarise(lines, parse_price("in=1000000,out=0"))
    assert (s["requests"], s["cached"], s["prompt_tokens"], s["cost_usd"]) == (3, 1, 20, 20.0)
    assert s["latency_p50_s"] == 2.0 and s["latency_p95_s"] == pytest.approx(2.9)
    assert s["output_tokens_per_s"] == 5.0 and percentile([], 50) is None
