"""Simulated consultations (:class:`chimed_eval.task.consult.ConsultTask`): the ``consult`` task
type over a user's own case records (a JSON array in CMB-Clin's layout: ``{id, title, description,
QA_pairs: [{question, answer}]}``, read by :func:`chimed_eval.tasks.cmb_clin.read_cases`) and the
named task ``consult-cmb-clin`` over CMB-Clin's 74 cases.

The reference diagnosis of a case comes from its first question that asks for the diagnosis
(:func:`chimed_eval.evidence.consult.reference_diagnosis`); the record itself is the patient's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from chimed_eval.core.types import Sample, file_sha256
from chimed_eval.evidence.consult import reference_diagnosis
from chimed_eval.task.consult import ConsultTask
from chimed_eval.task.options import TaskData
from chimed_eval.tasks import TASKS
from chimed_eval.tasks.cmb_clin import cases_file, read_cases
from chimed_eval.tasks.factory import TaskArg, TaskType, register_type


def load_cases(path: Path, shown: str) -> TaskData:
    """The consultation items of a CMB-Clin-layout file (``shown``: its name in results.json)."""
    samples = []
    for c in read_cases(path):
        qa = [(q.question, q.answer) for q in c.questions]
        ref, how = reference_diagnosis(qa)
        samples.append(Sample(id=c.id, input=c.description, target=ref,
                              metadata={"qa_pairs": [list(p) for p in qa], "title": c.title, "reference_source": how}))
    p = Path(path)
    return TaskData(samples=samples, files={shown: file_sha256(p / "CMB-Clin-qa.json" if p.is_dir() else p)})


def _cmb_clin(data_dir: Path) -> TaskData:
    f = cases_file(data_dir)
    return load_cases(f, str(f.relative_to(data_dir)) if f.is_relative_to(data_dir) else str(f))


_HELP = ("CMB-Clin's 74 case records as simulated consultations: the model is the doctor, --patient-model plays "
         "the patient; diagnosis accuracy, coverage, turns, plan rubric, simulator audit")
TASKS.add("consult-cmb-clin", lambda: ConsultTask("consult-cmb-clin", _cmb_clin, _HELP), _HELP)


@dataclass(frozen=True)
class ConsultSpec:
    """``--task-args`` of the ``consult`` type."""

    path: str
    name: str = "consult"


def _from_args(args: Mapping[str, str]) -> ConsultTask:
    from chimed_eval.core.errors import ConfigError

    known = {f.name for f in dataclasses.fields(ConsultSpec)}
    bad = sorted(set(args) - known)
    if bad:
        raise ConfigError(f"--task-args: the consult task does not read {', '.join(bad)}; it reads: "
                          f"{', '.join(sorted(known))}")
    if not args.get("path"):
        raise ConfigError("--task-args: the consult task needs path=FILE (case records in CMB-Clin's layout)")
    spec = ConsultSpec(**dict(args))
    return ConsultTask(spec.name, lambda _d: load_cases(Path(spec.path), spec.path),
                       f"consultations over {spec.path}")


def _rescoring(name: str, _out: Path) -> ConsultTask:
    return ConsultTask(name, lambda _d: TaskData(samples=[]))


register_type(TaskType(
    "consult", "simulated consultations over your own case records (JSON in CMB-Clin's layout)",
    (TaskArg("path", "str", dataclasses.MISSING, "a JSON array of {id, title, description, QA_pairs: "
             "[{question, answer}]}; the first question asking for the diagnosis gives the reference"),
     TaskArg("name", "str", "consult", "the task name in results")),
    _from_args, _rescoring, None,
    example="--tasks consult --task-args path=cases.json --patient-model PATIENT --max-turns 6"))
