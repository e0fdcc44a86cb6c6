"""Habits from the peers (lm-evaluation-harness, OpenCompass, EvalScope): flag aliases,
``--gen_kwargs``, ``--batch-size auto``, a fractional ``--limit``, ``--model hf``, ``-v/-q``
anywhere, shell completion -- from the CLI and from ``chimed_eval.evaluate``."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest

import chimed_eval
from chimed_eval.backends.batching import find_batch_size
from chimed_eval.backends.fake import FakeBackend
from chimed_eval.cli.app import build_parser, main
from chimed_eval.core.errors import ConfigError
from chimed_eval.core.gen_kwargs import GenKwargs, parse_gen_kwargs
from chimed_eval.core.types import GenerationConfig

TASK = "ceval-medical-paper"  # 41 items, letter-scored
GEN_TASK = "cmd-qa"  # generates


SHARED = Path(os.environ.get("CHIMED_EVAL_SHARED_DATA", "/work/shared/data"))


@pytest.fixture(autouse=True)
def shared_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs here read the shared data (whatever other tests did to the environment)."""
    monkeypatch.setenv("CHIMED_EVAL_DATA", str(SHARED))


def _data() -> Path:
    if not (SHARED / "ceval").is_dir() or not (SHARED / "cmd").is_dir():
        pytest.skip("the shared data is not here")
    return SHARED


def results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- aliases, -v/-q


def test_peer_spellings_set_the_same_options() -> None:
    a = build_parser().parse_args(["run", "--model", "m", "--tasks", "t", "--num_fewshot", "3", "--output_path", "o",
                                   "--model_args", "revision=x", "--batch_size", "auto", "--gen-kwargs", "top_k=3"])
    assert (a.shots, a.output, a.model_args, a.batch_size, a.gen_kwargs) == (3, Path("o"), "revision=x", "auto", "top_k=3")


@pytest.mark.parametrize("argv", [["-v", "tasks", "--no-data-check"], ["tasks", "--no-data-check", "-v"],
                                  ["tasks", "-q", "--no-data-check"], ["-q", "tasks", "--no-data-check"]])
def test_verbose_and_quiet_anywhere(argv: list[str]) -> None:
    a = build_parser().parse_args(argv)
    assert (a.verbose, a.quiet) == ("-v" in argv, "-q" in argv)


def test_verbose_and_quiet_together_are_refused(capsys) -> None:
    assert main(["-v", "tasks", "--no-data-check", "-q"]) == 2
    assert "contradict" in capsys.readouterr().err


def test_quiet_turns_progress_off() -> None:
    from chimed_eval.cli.run import run_config

    a = build_parser().parse_args(["run", "--model", "m", "--tasks", "t", "--output", "o", "-q"])
    assert run_config(a).progress is False


# ----------------------------------------------------------------------------- --model hf


def test_model_naming_a_backend_gets_the_hint(tmp_path: Path, capsys) -> None:
    assert main(["run", "--model", "hf", "--tasks", TASK, "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--backend hf --model MODEL" in err and "pretrained=" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
    with pytest.raises(ConfigError, match="--backend vllm"):
        chimed_eval.evaluate("vllm", TASK, backend="hf")


def test_lm_eval_pretrained_is_read_as_backend_and_model(tmp_path: Path, capsys) -> None:
    _data()
    rc = main(["run", "--model", "fake", "--model_args", "pretrained=oracle", "--tasks", TASK, "--limit", "3",
               "--output", str(tmp_path / "o"), "--no-progress"])
    assert rc == 0 and "read as --backend fake --model oracle" in capsys.readouterr().err
    r = results(tmp_path / "o")
    assert r["settings"]["backend"] == "fake" and r["settings"]["model"] == "oracle" and r["settings"]["model_args"] == {}
    assert main(["run", "--model", "hf", "--backend", "vllm", "--model_args", "pretrained=x", "--tasks", TASK,
                 "--output", str(tmp_path / "p")]) == 2


# ----------------------------------------------------------------------------- fractional --limit


def test_fractional_limit_takes_that_share_rounded_up(tmp_path: Path) -> None:
    _data()
    run = chimed_eval.evaluate("oracle", TASK, backend="fake", limit=0.1, output=tmp_path / "o", progress=False)
    assert run.tasks[0].n == math.ceil(0.1 * 41) == 5
    assert results(tmp_path / "o")["settings"]["limit"] == 0.1
    assert main(["run", "--backend", "fake", "--model", "oracle", "--tasks", TASK, "--limit", "0.5", "--output",
                 str(tmp_path / "c"), "--no-progress"]) == 0
    assert results(tmp_path / "c")["tasks"][TASK]["n"] == 21


@pytest.mark.parametrize("bad", ["0", "1.5", "-0.2", "x", "1e9.5"])
def test_bad_limits_exit_2(bad: str, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["run", "--backend", "fake", "--model", "oracle", "--tasks", TASK, "--limit", bad, "--output", str(tmp_path)])
    assert e.value.code == 2 and "--limit" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--limit"):
        chimed_eval.evaluate("oracle", TASK, backend="fake", limit=1.5)


# ----------------------------------------------------------------------------- --gen_kwargs


def test_gen_kwargs_parse_and_apply() -> None:
    k = parse_gen_kwargs("temperature=0.7,top_p=0.9,top_k=20,max_gen_toks=64,until=\\n\\n|答案")
    assert k == GenKwargs(temperature=0.7, top_p=0.9, top_k=20, max_gen_toks=64, until=("\n\n", "答案"))
    g = k.apply(GenerationConfig(max_new_tokens=512, stop=("x",)))
    assert (g.temperature, g.top_p, g.top_k, g.max_new_tokens, g.stop) == (0.7, 0.9, 20, 64, ("\n\n", "答案"))
    assert parse_gen_kwargs({"do_sample": True}).apply(GenerationConfig()).temperature == 1.0
    assert parse_gen_kwargs("do_sample=false").apply(GenerationConfig(temperature=1.0, top_p=0.85)).greedy
    assert parse_gen_kwargs({"max_new_tokens": 9}).max_gen_toks == 9  # the HF spelling
    for bad, msg in [("temperature=-1", "must be >= 0"), ("top_p=0", r"\(0, 1\]"), ("top_k=0", ">= 1"),
                     ("beam=4", "unknown key 'beam'"), ("do_sample=maybe", "true or false"),
                     ("do_sample=false,temperature=0.5", "greedy"), ("max_gen_toks=1.5", "integer"),
                     ("temperature=nan", "finite")]:
        with pytest.raises(ConfigError, match=msg):
            parse_gen_kwargs(bad)


def test_gen_kwargs_reach_generate_requests_only() -> None:
    from chimed_eval.engine.runner import RunSettings, prepare
    from chimed_eval.tasks import get_task

    data = _data()
    s = RunSettings(model="oracle", backend="fake", limit=3, gen_kwargs={"temperature": 0.6, "top_k": 5, "max_gen_toks": 11})
    gen = prepare(get_task(GEN_TASK), data, s).requests
    assert {(r.generation.temperature, r.generation.top_k, r.generation.max_new_tokens) for r in gen} == {(0.6, 5, 11)}
    assert all(r.generation.seed is not None for r in gen)  # sampled: seeded per item from --seed
    letters = prepare(get_task(TASK), data, s).requests
    assert all(r.generation is None for r in letters)


def test_gen_kwargs_are_recorded_and_pin_the_resume(tmp_path: Path, capsys) -> None:
    _data()
    out = tmp_path / "o"
    chimed_eval.evaluate("oracle", GEN_TASK, backend="fake", limit=2, output=out, progress=False,
                         gen_kwargs={"temperature": 0.7, "until": ["\n"]})
    assert results(out)["settings"]["gen_kwargs"] == {"temperature": 0.7, "until": ["\n"]}
    with pytest.raises(ConfigError, match="gen_kwargs.temperature: 0.7 -> 0.2"):
        chimed_eval.evaluate("oracle", GEN_TASK, backend="fake", limit=2, output=out, progress=False,
                             gen_kwargs="temperature=0.2,until=\\n")
    rc = main(["run", "--backend", "fake", "--model", "oracle", "--tasks", GEN_TASK, "--limit", "2", "--output", str(out),
               "--gen_kwargs", "temperature=0.7,until=\\n", "--no-progress"])
    assert rc == 0  # the same values resume
    plain = tmp_path / "plain"
    chimed_eval.evaluate("oracle", GEN_TASK, backend="fake", limit=2, output=plain, progress=False)
    assert "gen_kwargs" not in results(plain)["settings"]  # absent unless given: older runs read the same
    with pytest.raises(ConfigError, match="disagree"):
        chimed_eval.evaluate("oracle", GEN_TASK, backend="fake", max_new_tokens=5, gen_kwargs={"max_gen_toks": 6})


def test_gen_kwargs_reach_an_openai_compatible_server(tmp_path: Path) -> None:
    from conftest import write_exam_csv
    from test_openai_backend import FaultServer, margs

    server = FaultServer()
    try:
        exam = write_exam_csv(tmp_path / "exam.csv", 2)
        rc = main(["run", "--no-progress", "--backend", "openai", "--model", "m", "--tasks", "mcq", "--task-args",
                   f"path={exam}", "--variant", "generate", "--no-cache", "--output", str(tmp_path / "o"),
                   "--model-args", margs(server.url), "--gen_kwargs", "temperature=0.6,top_p=0.9,top_k=5,max_gen_toks=7"])
        assert rc == 0
        body = server.stats.bodies[0]
        assert (body["temperature"], body["top_p"], body["top_k"]) == (0.6, 0.9, 5)
        assert body.get("max_tokens", body.get("max_completion_tokens")) == 7 and "seed" in body
    finally:
        server.stop()


# ----------------------------------------------------------------------------- --batch-size auto


class OOM(RuntimeError):
    pass


def test_find_batch_size_halves_on_out_of_memory() -> None:
    tried: list[int] = []

    def attempt(n: int) -> None:
        tried.append(n)
        if n > 12:
            raise OOM("CUDA out of memory")

    cleared: list[int] = []
    assert find_batch_size(attempt, 64, lambda e: isinstance(e, OOM), lambda: cleared.append(1)) == 8
    assert tried == [64, 32, 16, 8] and len(cleared) == 3
    with pytest.raises(ValueError):  # not a memory error: not swallowed
        find_batch_size(lambda n: (_ for _ in ()).throw(ValueError("bad")), 8, lambda e: isinstance(e, OOM))
    with pytest.raises(OOM):  # even one item does not fit
        find_batch_size(lambda n: (_ for _ in ()).throw(OOM("x")), 4, lambda e: isinstance(e, OOM))


class ChoosingBackend(FakeBackend):
    """A fake backend that says which batch size fits, and counts the batches it is given."""

    def __init__(self, choice: int) -> None:
        super().__init__("oracle")
        self.choice, self.asked, self.sizes = choice, 0, []

    def choose_batch_size(self, kind, requests):
        self.asked += 1
        assert requests and all(r.kind == kind for r in requests)
        return self.choice

    def run(self, kind, requests):
        self.sizes.append(len(requests))
        return super().run(kind, requests)


def test_batch_size_auto_is_chosen_recorded_and_pinned(tmp_path: Path) -> None:
    _data()
    out = tmp_path / "o"
    b = ChoosingBackend(3)
    chimed_eval.evaluate(b, TASK, batch_size="auto", limit=7, output=out, progress=False)
    assert b.asked == 1 and max(b.sizes) == 3
    s = results(out)["settings"]
    assert (s["batch_size"], s["batch_size_chosen"]) == ("auto", 3)
    # a resumed auto run keeps the size the first run chose (its batch boundaries), asks nothing
    b2 = ChoosingBackend(5)
    chimed_eval.evaluate(b2, [TASK, "ceval-medical"], batch_size="auto", limit=7, output=out, progress=False)
    assert b2.asked == 0 and max(b2.sizes) == 3 and results(out)["settings"]["batch_size_chosen"] == 3
    with pytest.raises(ConfigError, match="batch-size"):
        chimed_eval.evaluate("oracle", TASK, backend="fake", batch_size="big")


def test_batch_size_auto_without_a_chooser_is_8(tmp_path: Path) -> None:
    _data()
    rc = main(["run", "--backend", "fake", "--model", "oracle", "--tasks", TASK, "--limit", "2", "--batch-size", "auto",
               "--output", str(tmp_path / "o"), "--no-progress"])
    assert rc == 0 and results(tmp_path / "o")["settings"]["batch_size_chosen"] == 8


# ----------------------------------------------------------------------------- completion


def _complete(script: str, words: list[str]) -> list[str]:
    line = " ".join(f"'{w}'" for w in words)
    prog = f'{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _chimed_eval; printf "%s\\n" "${{COMPREPLY[@]}}"'
    res = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    return res.stdout.split()


def test_bash_completion_script_comes_from_the_parser(capsys) -> None:
    assert main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    assert "complete -o filenames -F _chimed_eval chimed-eval" in script
    assert _complete(script, ["chimed-eval", "ru"]) == ["run"]
    assert "--gen_kwargs" in _complete(script, ["chimed-eval", "-v", "run", "--gen"])
    assert "--num_fewshot" in _complete(script, ["chimed-eval", "run", "--num"])
    assert "ceval-medical-paper" in _complete(script, ["chimed-eval", "run", "--tasks", "ceval"])
    assert _complete(script, ["chimed-eval", "run", "--backend", "vl"]) == ["vllm"]
    assert "paper-sampling" in _complete(script, ["chimed-eval", "run", "--decoding", ""])
    assert "--mirror" in _complete(script, ["chimed-eval", "data", "--mi"])


@pytest.mark.slow
def test_hf_backend_passes_top_k_and_picks_8_on_cpu(tiny_model) -> None:
    from chimed_eval.backends.hf import HFBackend
    from chimed_eval.core.types import Request
    from chimed_eval.models.resolve import ResolvedModel

    b = HFBackend(ResolvedModel(name="tiny", path=str(tiny_model)), device="cpu", dtype="float32", batch_size=2)
    seen: list[dict] = []
    real = b.model.generate

    def spy(*args, **kw):
        seen.append(kw)
        return real(*args, **kw)

    b.model.generate = spy
    g = GenerationConfig(max_new_tokens=3, temperature=0.8, top_p=0.9, top_k=5, seed=1)
    b.generate([Request("generate", "a", "问题：", generation=g)])
    assert (seen[-1]["top_k"], seen[-1]["temperature"], seen[-1]["top_p"], seen[-1]["do_sample"]) == (5, 0.8, 0.9, True)
    assert b.choose_batch_size("generate", [Request("generate", "a", "问题：", generation=g)]) == 8


def test_an_unset_top_k_leaves_the_cache_keys_of_older_requests_unchanged() -> None:
    """GenerationConfig.top_k (for --gen_kwargs) enters the response-cache key only when set."""
    import dataclasses
    import hashlib

    from chimed_eval.backends.cache import CACHE_VERSION, _canonical, cache_key
    from chimed_eval.core.types import Request

    r = Request("generate", "k", "问题：", generation=GenerationConfig(max_new_tokens=4, temperature=0.5, seed=3))
    old = dataclasses.asdict(r)
    old["generation"].pop("top_k")  # the request as it was before the field existed
    doc = {"v": CACHE_VERSION, "identity": {"m": 1}, "request": old}
    assert cache_key({"m": 1}, r) == hashlib.sha256(_canonical(doc).encode("utf-8")).hexdigest()
    assert cache_key({"m": 1}, dataclasses.replace(r, generation=dataclasses.replace(r.generation, top_k=5))) != \
        cache_key({"m": 1}, r)


def test_vllm_sampling_params_carry_the_gen_kwargs() -> None:
    from chimed_eval.backends.vllm import sampling_params

    def SP(**kw):  # vLLM's SamplingParams, as a record of its arguments
        return kw

    g = parse_gen_kwargs("temperature=0.6,top_p=0.9,top_k=5,max_gen_toks=7,until=x").apply(GenerationConfig(seed=3))
    assert sampling_params(SP, g) == {"max_tokens": 7, "temperature": 0.6, "top_p": 0.9, "seed": 3, "stop": ["x"],
                                      "top_k": 5}
    greedy = parse_gen_kwargs("do_sample=false,max_gen_toks=4").apply(GenerationConfig(temperature=1.0, top_p=0.85))
    assert sampling_params(SP, greedy) == {"max_tokens": 4, "temperature": 0.0, "stop": None}
    assert "top_k" not in sampling_params(SP, GenerationConfig(temperature=1.0, seed=1))  # vLLM's default
