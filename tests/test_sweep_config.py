"""``chimed-eval sweep --config FILE``: the run configuration file with a ``sweep`` table gives the
same sweep plan as the flags, flags win over the file, and a bad key exits 2 naming file and key.
No Ray is started: the plan is compared before anything is scheduled."""

from __future__ import annotations

import argparse

import pytest

from chimed_eval.cli.app import build_parser, main
from chimed_eval.cli.sweep import sweep_options
from chimed_eval.core.errors import ConfigError

FLAGS = ["sweep", "--backend", "fake", "--models", "oracle,random", "--tasks", "ceval-medical-paper,cmmlu-medical-paper",
         "--output", "S", "--limit", "5", "--shards", "2", "--workers-per-model", "2", "--cpus-per-model", "0.5",
         "--max-retries", "1", "--ray-address", "auto", "--no-progress"]


def plan(argv: list[str]) -> dict:
    a = build_parser().parse_args(argv)
    a.argv = list(argv)
    ns = vars(sweep_options(a))
    return {k: v for k, v in ns.items() if k not in ("argv", "config", "parser")}


TOML = """backend = "fake"
limit = 5
no_progress = true
output = "S"
[sweep]
models = ["oracle", "random"]
tasks = ["ceval-medical-paper", "cmmlu-medical-paper"]
ray_address = "auto"
shards = 2
workers_per_model = 2
cpus_per_model = 0.5
max_retries = 1
"""


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_the_file_gives_the_flags_plan(tmp_path, suffix):
    import json
    import tomllib

    f = tmp_path / f"sweep{suffix}"
    f.write_text(TOML if suffix == ".toml" else json.dumps(tomllib.loads(TOML)), encoding="utf-8")
    assert plan(["sweep", "--config", str(f)]) == plan(FLAGS)


def test_flags_win_over_the_file(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(TOML, encoding="utf-8")
    got = plan(["sweep", "--config", str(f), "--models", "random", "--shards", "3", "--limit", "2"])
    assert (got["models"], got["shards"], got["limit"], got["tasks"]) == (
        "random", 3, 2, "ceval-medical-paper,cmmlu-medical-paper")


@pytest.mark.parametrize("text,needle", [
    ('backend = "fake"\n[sweep]\nmodelz = ["a"]\n', "unknown key sweep.'modelz'"),
    ('shard = "1/2"\n[sweep]\nmodels = ["a"]\n', "unknown key 'shard'"),
    ('sweep = 3\n', "sweep: expected a table"),
    ('[sweep]\nshards = "many"\n', "--shards: invalid int value"),
    ('[sweep]\nmodels = ["oracle"]\ntasks = ["ceval-medical-paper"]\n', "--output is required"),
])
def test_a_bad_file_exits_2_naming_file_and_key(tmp_path, capsys, text, needle):
    f = tmp_path / "bad.toml"
    f.write_text(text, encoding="utf-8")
    assert main(["sweep", "--config", str(f)]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
    if "required" not in needle:
        assert str(f) in err


def test_run_config_leaves_the_sweep_table_alone(tmp_path):
    from chimed_eval.cli.config_file import read_run_config

    f = tmp_path / "s.toml"
    f.write_text('model = "oracle"\ntasks = ["ceval-medical-paper"]\n' + TOML.split("\n", 4)[4].split("[sweep]")[0]
                 + "[sweep]\nshards = 2\n", encoding="utf-8")
    (entry,) = read_run_config(f)
    assert entry.model == "oracle" and entry.tasks == ("ceval-medical-paper",)
