"""Rebuild the golden baselines that CI checks on every run (``tests/test_check.py``).

    python tests/golden/regenerate.py [--only NAME,...] [--data-dir DIR]

Each golden run is a fixed, small, deterministic evaluation; its baseline
(``tests/golden/<name>.baseline.json``) holds metrics and hashes only: item ids, per-item
prompt hashes, the item-set and prompt-set hashes, data-file hashes and the metrics with their
intervals. No prompt, item or generation text enters the repository.

* ``fake-exam``: the fake backend (``random``) on a synthetic 24-item exam written by the tests,
  paper prompt, 2 shots.
* ``fake-exam-generate``: the same exam, ``generate`` variant (answer extraction path).
* ``tiny-exam``: a tiny random transformers model built by the tests (``conftest.build_tiny_model``)
  on the same exam, paper prompt, next-token scoring; needs torch and transformers. Checked with
  tolerance 0 like the others: hashes, prompts, counts and accuracies exactly; ``ece`` and
  ``brier``, computed from the model's float32 probabilities, within their stated float noise
  (``chimed_eval.metrics.calibration.MODEL_FLOAT_NOISE``), as they move in the last bits from one
  CPU to another.
* ``fake-real-mcq`` / ``fake-real-gen``: the fake backend (``random`` for C-Eval and CMMLU with
  the paper's 5 shots, ``oracle`` for CCKS-2019 NER and HET-MC dialogue) on the first 8 items of
  each real task; needs the real data (``--data-dir``, default ../shared/data). Item ids and
  prompt hashes only: nothing of the data sets' text.

Regenerate only when a change of prompts, item sets or metrics is intended, and say so in the
commit.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

GOLDEN_DIR = Path(__file__).resolve().parent
TESTS = GOLDEN_DIR.parent
ROOT = TESTS.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

EXAM_ITEMS = 24
EXAM_CYCLE = "ABCDDCBA"
REAL_LIMIT = 8


@dataclass(frozen=True)
class Golden:
    name: str
    argv: tuple[str, ...]  # {exam}, {fewshot}, {model} and {data} are filled in
    needs: str | None = None  # None | "tiny" | "data"
    tolerance: str | None = None  # passed to check: None = the baseline's intervals

    @property
    def baseline(self) -> Path:
        return GOLDEN_DIR / f"{self.name}.baseline.json"


_EXAM = ("--tasks", "mcq", "--task-args", "path={exam},fewshot={fewshot}", "--shots", "2")
GOLDEN = (
    Golden("fake-exam", ("--backend", "fake", "--model", "random", *_EXAM), tolerance="0"),
    Golden("fake-exam-generate", ("--backend", "fake", "--model", "random", *_EXAM, "--variant", "generate"),
           tolerance="0"),
    Golden("tiny-exam", ("--backend", "hf", "--model", "{model}", "--device", "cpu", "--dtype", "float32",
                         "--batch-size", "8", *_EXAM), needs="tiny", tolerance="0"),
    Golden("fake-real-mcq", ("--backend", "fake", "--model", "random", "--tasks",
                             "ceval-medical-paper,cmmlu-medical-paper", "--shots", "5",
                             "--limit", str(REAL_LIMIT), "--data-dir", "{data}"), needs="data", tolerance="0"),
    Golden("fake-real-gen", ("--backend", "fake", "--model", "oracle", "--tasks", "ccks2019-ner-paper,mc-dialogue",
                             "--limit", str(REAL_LIMIT), "--data-dir", "{data}"), needs="data", tolerance="0"),
)


def write_exam(workdir: Path) -> tuple[Path, Path]:
    """The synthetic exam and its few-shot file (CMMLU layout; no data-set text)."""
    from conftest import write_exam_csv

    exam = write_exam_csv(workdir / "exam.csv", EXAM_ITEMS, EXAM_CYCLE)
    fewshot = write_exam_csv(workdir / "exam_dev.csv", 3, "BCA", stem="例")  # shots are not test items
    return exam, fewshot


def run_golden(g: Golden, workdir: Path, model: Path | None = None, data: Path | None = None) -> Path:
    """Run one golden evaluation into ``workdir/<name>``; returns the output directory."""
    from chimed_eval.cli.app import main

    exam, fewshot = write_exam(workdir)
    out = workdir / g.name
    fill = {"exam": str(exam), "fewshot": str(fewshot), "model": str(model or ""), "data": str(data or "")}
    argv = [a.format(**fill) for a in g.argv]
    rc = main(["run", "--no-progress", *argv, "--output", str(out)])
    if rc != 0:
        raise RuntimeError(f"golden run {g.name} failed with exit {rc}")
    return out


def main(argv: list[str] | None = None) -> int:
    from chimed_eval.reports.check import save_baseline

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=None, help="comma-separated golden names")
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    a = ap.parse_args(argv)
    only = {x.strip() for x in a.only.split(",")} if a.only else None
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = None
        for g in GOLDEN:
            if only and g.name not in only:
                continue
            if g.needs == "data" and not (a.data_dir / "cmmlu").is_dir():
                print(f"skip {g.name}: no real data at {a.data_dir}")
                continue
            if g.needs == "tiny" and model is None:
                from conftest import build_tiny_model

                model = build_tiny_model(work / "tiny-qwen2")
            out = run_golden(g, work, model, a.data_dir)
            save_baseline(out, g.baseline)
            print(f"wrote {g.baseline.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
