"""What ``chimed-eval data`` tells users is where the task loaders read (issue 14, item 25).

Files are created at the paths the data command prints, in the format it describes, and the
tasks must load them; the loaders of the public sets must read the manifest's destinations.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from chimed_eval.data import sets as data
from chimed_eval.core.errors import MissingDataError
from chimed_eval.tasks import TASKS, get_task

#: task -> the data set whose files it reads
TASK_DATA = {
    "ccks2019-ner": "ccks2019", "ccks2019-ner-paper": "ccks2019", "ceval-medical": "ceval",
    "ceval-medical-paper": "ceval", "chimed-qa": "chimed_qa", "chimst-ner": "chimst", "chimst-ner-paper": "chimst",
    "cmd-qa": "cmd", "cmmlu-medical": "cmmlu", "cmmlu-medical-paper": "cmmlu", "covid-dialogue-zh": "covid_zh",
    "mc-dialogue": "hetmc", "medqa-mcmle": "medqa_mcmle", "safetybench-zh": "safetybench",
    "cmexam": "cmexam", "cmb-exam": "cmb", "cmb-clin": "cmb_clin", "consult-cmb-clin": "cmb_clin",
}


def _printed_paths(text: str, root: Path) -> dict[str, list[Path]]:
    """The file paths under ``root`` that the placement notes print, by data set ``[name]``."""
    out: dict[str, list[Path]] = {}
    current = None
    for line in text.splitlines():
        head = re.search(r"\[(\w+)\]\s*$", line)
        if head:
            current = head.group(1)
            continue
        m = re.match(r"\s+(\S+)\s", line)
        if current and m and m.group(1).startswith(str(root)) and not m.group(1).endswith("/"):
            out.setdefault(current, []).append(Path(m.group(1)))
    return out


def _write_chimed_qa(path: Path) -> None:
    recs = [{"question": "感冒需要吃抗生素吗？", "answer_1": "一般不需要。", "answer_2": "病毒感染不用抗生素。"},
            {"id": "q2", "question": "高血压能吃党参吗？", "answer_1": "可以适量。"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")


def _write_chimst(path: Path) -> None:
    recs = [{"text": "患者头痛三天", "entities": [{"start": 2, "end": 4, "type": "症状"}]},
            {"text": "服用阿司匹林", "entities": [{"start": 2, "end": 6, "type": "药物"}]}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")


CMD_CSV = "department,title,ask,answer\r\n心血管科,高血压能吃党参吗,我有高血压可以吃党参吗？,可以适量服用。\r\n"
HETMC = "id\t1\tapartment\t内科\tdisease\t胃炎\nP\t胃胀半年\t0\nD\t做过胃镜吗？\t0\nSUM1\tx\n"
COVID = [["病人：咳嗽两天了", "医生：建议做核酸检测。"]]
CLIN = [{"id": "0", "title": "t", "description": "病人，男，49岁。", "QA_pairs": [{"question": "诊断？", "answer": "疝。"}]}]
#: public sets of the generation tasks: (task, manifest file name, synthetic content)
PUBLIC_SYNTHETIC = [
    ("cmd-qa", "internal_medicine_5000-6000.csv", CMD_CSV.encode("gb18030")),
    ("mc-dialogue", "test.dialog", HETMC.encode("utf-8")),
    ("covid-dialogue-zh", "test_data.json", json.dumps(COVID, ensure_ascii=False).encode("utf-8")),
    ("cmb-clin", "CMB-Clin-qa.json", json.dumps(CLIN, ensure_ascii=False).encode("utf-8")),
]


def test_files_placed_where_data_says_are_what_the_tasks_load(tmp_path, capsys):
    """The sets with no public copy at the paths the data command prints; the public sets of the
    generation tasks at the manifest's destinations (where the command downloads them)."""
    root = tmp_path / "data"
    for task, file_name, content in PUBLIC_SYNTHETIC:
        [dest] = [f for f in data.MANIFEST[TASK_DATA[task]].files() if f.endswith("/" + file_name)]
        (root / dest).parent.mkdir(parents=True)
        (root / dest).write_bytes(content)
        loaded = get_task(task).load(root)
        assert loaded.samples and set(loaded.files) == {dest}, task
    consult = get_task("consult-cmb-clin").load(root)  # the consultations read the same file
    assert consult.samples and set(consult.files) == set(get_task("cmb-clin").load(root).files)
    assert data.run_data_command(root, ["chimed_qa", "chimst"], None, False, False) == 0
    printed = _printed_paths(capsys.readouterr().out, root)
    assert set(printed) == {"chimed_qa", "chimst"}
    writers = {"chimed_qa": _write_chimed_qa, "chimst": _write_chimst}
    for name, paths in printed.items():
        for p in paths:
            p.parent.mkdir(parents=True, exist_ok=True)
            writers[name](p)
    qa = get_task("chimed-qa").load(root)
    assert [s.id for s in qa.samples] == ["chimed-1-1", "chimed-1-2", "chimed-q2-1"]
    assert set(qa.files) == {p.relative_to(root).as_posix() for p in printed["chimed_qa"]}
    ner = get_task("chimst-ner").load(root)
    assert len(ner.samples) == 2 and len(ner.fewshot[None]) == 2  # test and the optional train file
    assert set(ner.files) == {p.relative_to(root).as_posix() for p in printed["chimst"]}
    # once placed, the data command reports them as placed
    assert data.run_data_command(root, ["chimed_qa", "chimst"], None, True, False) == 0


def test_the_commands_data_prints_are_valid_commands(tmp_path, capsys):
    from chimed_eval.cli.app import build_parser

    assert data.run_data_command(tmp_path, ["cmd", "chimst"], None, True, False) == 1
    err = capsys.readouterr().err
    commands = re.findall(r"`(chimed-eval [^`]+)`", data.describe_manual() + err)
    assert len(commands) >= 3
    for cmd in commands:
        args = build_parser().parse_args(shlex.split(cmd)[1:])  # argparse exits on a bad command
        assert args.command == "data" and args.datasets


def test_each_location_is_defined_once_and_the_manifest_follows_it():
    for name, spec in data.MANIFEST.items():
        loc = data.data_location(name)
        assert all(f.startswith(loc + "/") for f in spec.files()), name
    for name, m in data.MANUAL_SETS.items():
        assert m.folder == data.data_location(name)
        assert all(path.startswith(m.folder + "/") for path, _ in m.layout), name
    assert set(data.DATA_LOCATIONS) == set(data.MANIFEST) | set(data.MANUAL_SETS)
    assert set(TASK_DATA.values()) <= set(data.DATA_LOCATIONS)
    assert set(TASKS) == set(TASK_DATA), "a new task needs its data set in TASK_DATA"


def test_every_loader_reads_where_the_manifest_puts_the_files(shared_data):
    """On the byte-for-byte copies: every file a task reads is a manifest destination of its data
    set; a task whose set has no public copy names the path the placement notes print."""
    for task, name in TASK_DATA.items():
        if name in data.MANUAL_SETS:
            with pytest.raises(MissingDataError) as e:
                get_task(task).load(shared_data)
            assert str(shared_data / data.MANUAL_SETS[name].layout[0][0]) in str(e.value), task
            continue
        files = set(get_task(task).load(shared_data).files)
        assert files and files <= set(data.MANIFEST[name].files()), (task, files - set(data.MANIFEST[name].files()))
