"""`chimed-eval --help` and `chimed-eval tasks` must not import torch (nor transformers)."""

import subprocess
import sys

import pytest

PROBE = """
import sys
from chimed_eval.cli.app import main
try:
    main({argv!r})
except SystemExit:
    pass
heavy = sorted(m for m in ("torch", "transformers", "vllm", "numpy") if m in sys.modules)
print("HEAVY:" + ",".join(heavy))
"""


@pytest.mark.parametrize("argv", [["--help"], ["tasks", "--no-data-check"], ["models"], ["run", "--help"],
                                  ["completion", "bash"]])
def test_cli_does_not_import_heavy_libraries(argv):
    out = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True, check=True)
    heavy = out.stdout.strip().splitlines()[-1]
    assert heavy == "HEAVY:", f"chimed-eval {' '.join(argv)} imported {heavy}"


def test_tasks_with_its_data_check_imports_no_model_library():
    """`chimed-eval tasks` loads each task's data as a run would (to mark it present), which may
    bring numpy in (openpyxl does, for CMExam's xlsx); never a model library."""
    out = subprocess.run([sys.executable, "-c", PROBE.format(argv=["tasks"])], capture_output=True, text=True, check=True)
    heavy = out.stdout.strip().splitlines()[-1].removeprefix("HEAVY:").split(",")
    assert not {"torch", "transformers", "vllm"} & set(heavy), heavy
