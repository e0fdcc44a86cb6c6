"""The user's own data, smaller items of issue 18 (item 8): a truncated UTF-8 file is called
truncated (not GBK), an unknown fake model is one clean error line, and an unknown task lists the
task types."""

from __future__ import annotations

import pytest

from chimed_eval.backends.fake import FakeBackend
from chimed_eval.cli.app import main
from chimed_eval.core.errors import ConfigError, DataError
from chimed_eval.files.tabular import read_rows
from conftest import write_exam_csv

ROWS = "question,A,B,C,D,answer\n成人发热首选哪项检查？,血常规,胸片,心电图,尿常规,A\n哪种维生素缺乏导致坏血病？,维生素A,维生素B1,维生素C,维生素D,C\n"


@pytest.mark.parametrize("cut", [1, 2])  # 1 or 2 bytes of a 3-byte character are left at the end
def test_a_utf8_file_cut_inside_its_last_character_is_called_truncated(tmp_path, cut):
    body = ROWS.encode("utf-8") + "哪".encode("utf-8")[:cut]
    path = tmp_path / "exam.csv"
    path.write_bytes(body)
    with pytest.raises(DataError) as e:
        read_rows(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}:4:"), msg  # the line of the cut character
    assert "truncated" in msg and "GBK" not in msg, msg
    assert f"the last {cut} byte(s)" in msg


def test_a_gbk_file_is_still_called_gbk_and_a_bad_byte_before_the_end_is_not_truncation(tmp_path):
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(ROWS.encode("gb18030"))
    with pytest.raises(DataError, match="probably GBK/GB18030"):
        read_rows(gbk)
    # an invalid byte in the middle, and a cut character at the end: not a clean truncation
    mixed = tmp_path / "mixed.csv"
    mixed.write_bytes(ROWS.encode("utf-8").replace("坏血病".encode(), "坏血病".encode("gb18030")) + "哪".encode()[:2])
    with pytest.raises(DataError) as e:
        read_rows(mixed)
    assert "probably GBK/GB18030" in str(e.value) and "truncated" not in str(e.value)
    assert str(e.value).startswith(f"{mixed}:3:")


@pytest.mark.parametrize("model", ["nonsense", "oracle:A", "random:x", "fixed", "fixed:"])
def test_an_unknown_fake_model_is_a_config_error_naming_the_models(model):
    with pytest.raises(ConfigError) as e:
        FakeBackend(model=model)
    if model.startswith("fixed"):
        assert "fixed:A" in str(e.value)
    else:
        assert all(m in str(e.value) for m in ("oracle", "fixed:X", "random")), str(e.value)
    for ok in ("oracle", "random", "random:3", "fixed:A", "fixed:头痛"):  # random:N: a random model of its own seed
        FakeBackend(model=ok)


def test_random_n_models_are_distinct_and_plain_random_is_unchanged():
    from chimed_eval.core.types import Request

    reqs = [Request("loglikelihood", f"k{i}", "问", continuations=tuple("ABCDEFGH")) for i in range(40)]
    picks = {m: [r.greedy.index(True) for r in FakeBackend(model=m, seed=1).loglikelihood(reqs)]
             for m in ("random", "random:1", "random:2")}
    assert picks["random:1"] != picks["random:2"] and picks["random"] != picks["random:1"]
    assert picks["random:1"] == [r.greedy.index(True) for r in FakeBackend(model="random:1", seed=1).loglikelihood(reqs)]
    assert FakeBackend(model="random:7").model_info().name == "fake-random:7"


def test_an_unknown_fake_model_on_the_command_line_is_one_error_line_exit_2(tmp_path, capsys):
    exam = write_exam_csv(tmp_path / "exam.csv", 4)
    rc = main(["run", "--no-progress", "--backend", "fake", "--model", "nonsense", "--tasks", "mcq",
               "--task-args", f"path={exam}", "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("chimed-eval: error: unknown fake backend model 'nonsense'"), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert all(m in err for m in ("oracle", "fixed:X", "random"))


@pytest.mark.parametrize("task_args", [True, False])
def test_an_unknown_task_lists_the_task_types(tmp_path, capsys, task_args):
    exam = write_exam_csv(tmp_path / "exam.csv", 4)
    extra = ["--task-args", f"path={exam}"] if task_args else []
    rc = main(["run", "--no-progress", "--backend", "fake", "--model", "oracle", "--tasks", "nerr", *extra,
               "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "unknown task 'nerr'" in err, err
    types = err.split("Task types:")[1]
    assert {"mcq", "ner", "scale", "qa"} <= {t.strip(" ,.;\n") for t in types.split(",")}, err
    assert not (tmp_path / "out" / "results.json").exists()
    assert len(err.strip().splitlines()) == 1
