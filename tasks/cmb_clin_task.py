"""``cmb-clin``: CMB-Clin's clinical case analysis, the case's questions asked in order, the model's
own earlier answers kept in the conversation.

Data: ``<data-dir>/cmb-clin/CMB-Clin-qa.json`` (:mod:`chimed_eval.tasks.cmb_clin`): 74 cases, 208
questions. One item per question, id ``cmb-clin-<case id>-<k>`` (k from 1, in the asked order),
subject the case id; items in file order (``--limit N``: the first N questions).

Conversation: the first user turn is the case record and the first question
(:data:`FIRST_TURN`); each later question is a user turn after the model's own answer to the
previous one (the record's ``generation``, as scored: stop strings and reasoning traces cut). So
question k's prompt depends on the answer to k-1: the runner asks the questions round by round
(round k-1: every case's k-th question, :attr:`Task.multi_turn`), every request on its own through
the response cache, and a resumed run rebuilds each later prompt from the saved answers (an item
recorded on other earlier answers is refused, as any changed prompt is). The ``paper`` variant
renders the turns as ``[human]:…[bot]:…`` (the dialogue tasks' form), ``chat`` as messages in the
model's chat format. Decoding: as the other generation tasks (greedy, 512 new tokens).

Scores: BLEU/ROUGE in both protocols against the reference answer (the generation tasks'
metrics); the questions with embedded options and a stated answer letter (7 in the release) are
also read as multiple choice (the exam cascade, :func:`chimed_eval.extract.letters.extract_final_answer`)
and reported as ``choice_acc`` (percent) over those questions (``n`` = their count, Wilson interval),
``case_count`` the cases covered; the
records keep ``extra.choice``. ``subjects`` holds per case the number of questions and their mean
ROUGE-L (char, percent). The authors' measure, a judge's 1-5 scores on fluency, relevance, completeness and
medical proficiency, comes from ``--judge MODEL`` (the ``cmb-clin`` rubric is the default for this
task), reported per criterion and as their mean, as the CMB paper reports them.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.types import Metric, Request, Response, Sample, SampleScore, file_sha256
from chimed_eval.task.options import TaskData, TaskRunOptions
from chimed_eval.tasks import TASKS
from chimed_eval.tasks.cmb_clin import FOLDER, cases_file, read_cases
from chimed_eval.tasks.generation import DOCTOR, PATIENT, GenerationTask

NAME = "cmb-clin"
#: the first user turn: the case record, then the first question
FIRST_TURN = "以下是一个临床病例：\n{description}\n\n请根据病例回答问题：{question}"


def load(data_dir: Path) -> TaskData:
    """One item per question, in file order; ``metadata``: the case, its record and the question's place."""
    path = cases_file(data_dir)
    samples = []
    for case in read_cases(path):
        for q in case.questions:
            meta: dict[str, Any] = {"case": case.id, "title": case.title, "question_index": q.index,
                                    "n_questions": len(case.questions), "description": case.description,
                                    "case_questions": [x.question for x in case.questions]}
            if q.is_choice:
                meta.update(options=list(q.options), answer_letter=q.answer_letter)
            samples.append(Sample(id=f"{NAME}-{case.id}-{q.index + 1}", input=q.question, target=q.answer,
                                  subject=case.id, metadata=meta))
    return TaskData(samples=samples, files={f"{FOLDER}/{path.name}": file_sha256(path)})


def _earlier_id(sample: Sample, k: int) -> str:
    return f"{NAME}-{sample.metadata['case']}-{k + 1}"


class CmbClinTask(GenerationTask):
    """The case's questions in order, the model's own answers kept (module docstring)."""

    multi_turn = True

    def __init__(self) -> None:
        super().__init__(NAME, load, "CMB-Clin: 74 clinical cases, 208 questions asked in order (the model's own "
                                     "answers kept); BLEU/ROUGE, option questions as multiple choice, --judge rubric")

    def round_of(self, sample: Sample) -> int:
        return int(sample.metadata["question_index"])

    def conversation(self, sample: Sample, answers: Mapping[str, str]) -> Sample:
        """``sample`` as a dialogue item: its case's earlier questions and the kept answers, then its question."""
        k = self.round_of(sample)
        questions = sample.metadata["case_questions"]
        turns: list[tuple[str, str]] = []
        for j in range(k + 1):
            q = FIRST_TURN.format(description=sample.metadata["description"], question=questions[0]) if j == 0 \
                else questions[j]
            turns.append((PATIENT, q + "\n"))
            if j < k:
                turns.append((DOCTOR, answers[_earlier_id(sample, j)] + "\n"))
        return replace(sample, metadata={**sample.metadata, "turns": [list(t) for t in turns]})

    def round_requests(self, data: TaskData, samples: Sequence[Sample], options: TaskRunOptions,
                       answers: Mapping[str, str]) -> list[Request]:
        missing = [(s.id, _earlier_id(s, j)) for s in samples for j in range(self.round_of(s))
                   if _earlier_id(s, j) not in answers]
        if missing:
            raise ConfigError(f"task {NAME}: item {missing[0][0]} needs the answer to {missing[0][1]} first "
                              "(its case's earlier questions must be asked in the same run)")
        return super().build_requests(data, [self.conversation(s, answers) for s in samples], options)

    def build_requests(self, data: TaskData, samples: Sequence[Sample], options: TaskRunOptions) -> list[Request]:
        """The first round's requests (a later round needs the answers: :meth:`round_requests`)."""
        return self.round_requests(data, [s for s in samples if self.round_of(s) == 0], options, {})

    def score(self, data: TaskData, sample: Sample, request: Request, response: Response,
              options: TaskRunOptions) -> SampleScore:
        s = super().score(data, sample, request, response, options)
        meta = sample.metadata
        extra = {**s.extra, "case": meta["case"], "question_index": meta["question_index"]}
        if meta.get("answer_letter"):
            extra.update(options=list(meta["options"]), answer_letter=meta["answer_letter"])
        return _with_choice(replace(s, extra=extra))

    def rescore(self, record: Mapping[str, object], variant: str) -> SampleScore:
        return _with_choice(super().rescore(record, variant))

    def aggregate(self, scores: Sequence[SampleScore], variant: str,
                  seed: int) -> tuple[list[Metric], dict[str, dict[str, float | int]]]:
        metrics, _ = super().aggregate(scores, variant, seed)
        metrics = [*metrics, *choice_metrics(scores)]
        cases: dict[str, list[SampleScore]] = {}
        for s in scores:
            cases.setdefault(str(s.extra.get("case", s.subject)), []).append(s)
        subjects: dict[str, dict[str, float | int]] = {
            c: {"questions": len(v), "rougeL_char": 100 * math.fsum(x.score for x in v) / len(v)}
            for c, v in sorted(cases.items())}
        metrics.append(Metric("case_count", float(len(cases)), n=len(scores)))
        return metrics, subjects


def _with_choice(s: SampleScore) -> SampleScore:
    """An option question's letter read from the answer (``extra.choice``: gold, read, rule, correct)."""
    from chimed_eval.extract.letters import LETTERS, extract_final_answer

    gold = s.extra.get("answer_letter")
    if not gold:
        return s
    opts = [str(o) for o in s.extra.get("options") or ()]
    got = extract_final_answer(s.generation or "", len(opts), opts)
    pred = None if got.indices is None or len(got.indices) != 1 else LETTERS[next(iter(got.indices))]
    return replace(s, extra={**s.extra, "choice": {"gold": gold, "pred": pred, "rule": got.rule,
                                                   "correct": pred == gold}})


def choice_metrics(scores: Sequence[SampleScore]) -> list[Metric]:
    """``choice_acc``: the share of option questions whose read letter is the reference's (Wilson interval)."""
    from chimed_eval.metrics.stats import WILSON, wilson

    marks = [bool(s.extra["choice"]["correct"]) for s in scores if isinstance(s.extra.get("choice"), dict)]
    if not marks:
        return []
    lo, hi = wilson(float(sum(marks)), len(marks))
    return [Metric("choice_acc", 100.0 * sum(marks) / len(marks), 100 * lo, 100 * hi, n=len(marks), averaging="items",
                   ci_method=WILSON)]


TASKS.add(NAME, CmbClinTask, "CMB-Clin clinical cases (74 cases, 208 questions asked in order, own answers kept): "
                             "BLEU/ROUGE, option questions as multiple choice; --judge for the authors' four criteria")
