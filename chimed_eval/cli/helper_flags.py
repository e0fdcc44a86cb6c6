"""The ``run`` flags of the other models a run may ask besides the evaluated one: a consultation's
patient simulator and judge (``--patient-model``, ``--consult-judge``, ``--max-turns``;
:mod:`chimed_eval.engine.consult`) and the answer check of generated multiple-choice answers
(``--answer-check``; :mod:`chimed_eval.engine.answer_check`). They map one to one onto fields of
:class:`chimed_eval.engine.api.RunConfig`, so ``chimed_eval.evaluate(..., patient_model=...)``
takes the same options."""

from __future__ import annotations

import argparse
from typing import Any

from chimed_eval.core.kv import parse_kv


def add_run_flags(r: argparse.ArgumentParser) -> None:
    """The helper-model flags of ``chimed-eval run``."""
    r.add_argument("--patient-model", default=None, metavar="MODEL",
                   help="consultation tasks (consult, consult-cmb-clin): the patient simulator (a preset, local dir, "
                        "hub id or API model; fake: patient:faithful|leaky|misquoting)")
    r.add_argument("--patient-backend", default="hf", help="the patient simulator's backend (default hf)")
    r.add_argument("--patient-args", default="", help="k=v,... for the patient backend")
    r.add_argument("--consult-judge", default=None, metavar="MODEL",
                   help="consultations: the judge of diagnosis, plan and simulator audit (default: the patient model)")
    r.add_argument("--consult-judge-backend", default=None, help="the consultation judge's backend (default: the "
                                                                 "patient's)")
    r.add_argument("--consult-judge-args", default="", help="k=v,... for the consultation judge backend")
    r.add_argument("--max-turns", type=int, default=None,
                   help="consultations: the doctor's turn budget (default 10); no diagnosis by then counts wrong")
    r.add_argument("--answer-check", default=None, metavar="MODEL",
                   help="--variant generate/cot: a model reads the chosen letter(s) where the extraction rules find "
                        "none; reported apart (acc_with_answer_check, extraction_rule_model_count), acc stays rule-only")
    r.add_argument("--answer-check-backend", default="hf", help="the answer checker's backend (default hf)")
    r.add_argument("--answer-check-args", default="", help="k=v,... for the answer checker's backend")


def config_fields(a: argparse.Namespace) -> dict[str, Any]:
    """The RunConfig fields of these flags."""
    return {"patient_model": a.patient_model, "patient_backend": a.patient_backend,
            "patient_args": parse_kv(a.patient_args, "--patient-args"), "consult_judge": a.consult_judge,
            "consult_judge_backend": a.consult_judge_backend,
            "consult_judge_args": parse_kv(a.consult_judge_args, "--consult-judge-args"), "max_turns": a.max_turns,
            "answer_check": a.answer_check, "answer_check_backend": a.answer_check_backend,
            "answer_check_args": parse_kv(a.answer_check_args, "--answer-check-args")}
