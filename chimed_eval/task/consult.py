"""A simulated consultation: the evaluated model is the doctor, a patient simulator plays the case
record, a judge grades the outcome and audits the simulator.

The task holds no backend: it says what each party is asked (:mod:`chimed_eval.prompts.consult`),
reads what comes back (:mod:`chimed_eval.extract.consult`), answers test orders from the record
(:mod:`chimed_eval.evidence.consult`) and turns a finished consultation into a record and figures
(:mod:`chimed_eval.metrics.consult`). The driver that asks the models turn by turn, saves each
transcript after every turn and resumes it is :mod:`chimed_eval.engine.consult` (the runner hands
it every task whose ``interactive`` is true).

Items: ``Sample(id, input=record, target=reference diagnosis, metadata={"qa_pairs": [[q, a], ...]})``.
The patient opens with :data:`OPENING` (no symptom is given away: the doctor must ask).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.types import GenerationConfig, Metric, Request, Response, Sample, SampleScore
from chimed_eval.evidence import consult as ev
from chimed_eval.extract import consult as ex
from chimed_eval.prompts import consult as pr
from chimed_eval.task.base import Task
from chimed_eval.task.options import TaskData, TaskRunOptions

DEFAULT_MAX_TURNS = 10
DOCTOR_MAX_NEW_TOKENS = 256
#: the patient simulator's and the judge's budgets per reply (recorded in settings.generation.<task>)
HELPER_MAX_NEW_TOKENS = {"patient": 128, "judge": 256}
OPENING = "医生您好，我最近身体不舒服，想请您看看。"
STOPS = ("\n病人：", "\n患者：", "\n检查结果：")
Turn = dict[str, Any]


class ConsultTask(Task):
    """A consultation task over case records loaded by ``loader``."""

    variants = ("plain", "chat")
    default_variant = "plain"
    interactive = True  # run by chimed_eval.engine.consult, not in one batched request per item

    def __init__(self, name: str, loader: Callable[[Path], TaskData], description: str = "") -> None:
        self.name = name
        self._loader = loader
        self.description = description

    def load(self, data_dir: Path) -> TaskData:
        return self._loader(data_dir)

    def scoring_mode(self, variant: str) -> str:
        return "consultation"

    def check_options(self, options: TaskRunOptions) -> None:
        if options.max_turns is not None and options.max_turns < 1:
            raise ConfigError("--max-turns must be >= 1")

    @staticmethod
    def max_turns(options: TaskRunOptions) -> int:
        return options.max_turns or DEFAULT_MAX_TURNS

    # --- what each party is asked --------------------------------------------------------------

    def doctor_request(self, sample: Sample, turns: Sequence[Turn], turn: int, options: TaskRunOptions) -> Request:
        """The doctor's ``turn``-th request (1-based; the first is the item's own request)."""
        text = pr.doctor_prompt(OPENING, turns, turn, self.max_turns(options))
        messages: tuple = ()
        special = None
        stop = STOPS
        if options.chat is not None:
            from chimed_eval.models.chat import render_messages, with_system

            text, messages = render_messages(options.chat, with_system([{"role": "user", "content": text}],
                                                                       options.system_prompt))
            special, stop = options.chat.add_special_tokens, STOPS + tuple(options.chat.stop)
        gen = GenerationConfig(max_new_tokens=options.max_new_tokens or DOCTOR_MAX_NEW_TOKENS, stop=stop)
        key = sample.id if turn == 1 else f"{sample.id}#doctor{turn}"
        return Request(kind="generate", key=key, context=text, add_special_tokens=special, generation=gen,
                       messages=messages)

    def build_requests(self, data: TaskData, samples: Sequence[Sample], options: TaskRunOptions) -> list[Request]:
        return [self.doctor_request(s, [], 1, options) for s in samples]

    def generation_record(self, data: TaskData, samples: Sequence[Sample], requests: Sequence[Request],
                          options: TaskRunOptions) -> Mapping[str, Any] | None:
        return {"max_turns": self.max_turns(options), "doctor_max_new_tokens": options.max_new_tokens
                or DOCTOR_MAX_NEW_TOKENS, "patient_max_new_tokens": HELPER_MAX_NEW_TOKENS["patient"],
                "judge_max_new_tokens": HELPER_MAX_NEW_TOKENS["judge"], "prompt_version": pr.CONSULT_PROMPT_VERSION,
                "chat_template": options.chat.label if options.chat is not None else None}

    @staticmethod
    def patient_prompt(sample: Sample, turns: Sequence[Turn]) -> str:
        return pr.patient_prompt(sample.input, turns)

    @staticmethod
    def answer_tests(sample: Sample, order: str) -> str:
        """The record's answer to a test order (its examination and test parts that match)."""
        parts = ev.answer_test_order(order, ev.split_record(sample.input))
        if not parts:
            return "没有这项检查的结果。"
        return "；".join(f"{h}：{t}".replace("\n", " ") for h, t in parts)

    @staticmethod
    def judge_prompts(sample: Sample, state: Mapping[str, Any]) -> dict[str, str]:
        """The three judge prompts of a finished consultation (diagnosis, plan, audit)."""
        qa = [tuple(p) for p in sample.metadata.get("qa_pairs", ())]
        return {"diagnosis": pr.diagnosis_prompt(str(sample.target), ev.normalise_diagnosis(state.get("diagnosis", ""))),
                "plan": pr.plan_prompt(ev.reference_plan(qa), state.get("diagnosis", ""), state.get("plan", "")),
                "audit": pr.audit_prompt(sample.input, str(sample.target), state["turns"])}

    def oracle_output(self, sample: Sample, request: Request, options: TaskRunOptions) -> int | str | None:
        """A perfect doctor (the fake ``oracle``): the reference diagnosis and plan at once."""
        qa = [tuple(p) for p in sample.metadata.get("qa_pairs", ())]
        return f"诊断：{sample.target}\n计划：{ev.reference_plan(qa)}"

    # --- scoring -------------------------------------------------------------------------------

    def score(self, data: TaskData, sample: Sample, request: Request, response: Response,
              options: TaskRunOptions) -> SampleScore:
        raise ConfigError(f"task {self.name!r} is a consultation: it runs through chimed_eval.engine.consult")

    def score_consultation(self, sample: Sample, request: Request, state: Mapping[str, Any]) -> SampleScore:
        """The record of a finished, judged consultation (``state``: the driver's saved state)."""
        facts = ev.history_facts(ev.split_record(sample.input).history)
        extra = {"transcript": list(state["turns"]), "ended": state["ended"], "doctor_tokens": state.get("doctor_tokens"),
                 "verdicts": dict(state["verdicts"]), "facts": facts, "diagnosis": state.get("diagnosis", ""),
                 "plan": state.get("plan", ""), "prompt_version": pr.CONSULT_PROMPT_VERSION,
                 "record_quantities": [list(q) for q in ev.quantities(sample.input, "record")],
                 "reference_source": sample.metadata.get("reference_source")}
        base = SampleScore(id=sample.id, subject=sample.subject, prompt=request.context,
                           prompt_hash=request.prompt_hash, gold=str(sample.target), prediction=None, score=0.0,
                           generation=state.get("final_text", ""), extra=extra)
        return judge_record(base)

    def rescore(self, record: Mapping[str, object], variant: str) -> SampleScore:
        from chimed_eval.core.types import record_to_score

        return judge_record(record_to_score(record))

    def aggregate(self, scores: Sequence[SampleScore], variant: str, seed: int) -> tuple[list[Metric], dict[str, dict[str, float | int]]]:
        from chimed_eval.metrics.consult import consult_figures

        return consult_figures([s.extra for s in scores], seed), {}


def judge_record(s: SampleScore) -> SampleScore:
    """Everything derived from a consultation record's transcript and verdict texts: diagnosis
    correctness, coverage, turns, characters, plan score, the judge's audit and the rule reader's
    (``audit_rule``: a value the patient stated against the record's, :func:`ev.value_contradictions`)
    (a pure function of the record, so ``chimed-eval score`` recomputes it)."""
    import dataclasses

    e = dict(s.extra)
    turns = e["transcript"]
    replies = [t["text"] for t in turns if t["role"] == "patient"]
    got = ev.elicited(e["facts"], replies)
    v = e["verdicts"]
    correct = ex.diagnosis_verdict(v.get("diagnosis", "")) if e.get("diagnosis") else 0
    plan = ex.plan_scores(v.get("plan", ""), pr.PLAN_CRITERIA)
    readable = [x for x in plan.values() if x is not None]
    audit, example = ex.audit_verdicts(v.get("audit", ""), pr.AUDIT_QUESTIONS)
    doctor = [t["text"] for t in turns if t["role"] == "doctor"]
    if "record_quantities" in e:  # the rule reader of 矛盾 (records made before it was kept have none)
        found = ev.value_contradictions(e["record_quantities"], replies)
        e["audit_rule"] = {"矛盾": bool(found), "examples": found[:3]}
    e.update(diagnosis_correct=correct, elicited=got, coverage=(sum(got) / len(got)) if got else 0.0,
             turns=len(doctor), doctor_chars=sum(len(t) for t in doctor), plan_scores=plan,
             plan_score=((sum(readable) / len(readable)) - 1) / 4 if readable else None,
             audit={**audit, "example": example})
    return dataclasses.replace(s, prediction=ev.normalise_diagnosis(e.get("diagnosis", "")),
                               score=float(correct == 1), extra=e)
