"""The consultation driver: runs every case of an interactive task
(:class:`chimed_eval.task.consult.ConsultTask`) turn by turn with three models, the evaluated
doctor, the patient simulator and the judge.

Each round asks the patient for the replies owed (batched over cases), then the doctor for its
next turn (batched; a turn keeps the model's raw text under ``raw`` where only part of it was the
party's own words); a test order is answered from the record, a diagnosis ends the case, the
turn budget ends it too. A case's state (its transcript, token count, verdicts) is written to
``OUT/consult/<task>/<sha of id>.json`` after every round, so a run killed mid-consultation resumes
at the turn it reached; every model call goes through the backends as opened (the response cache
when on), so a resumed round that was already answered costs nothing. Once every case has ended,
the judge gives three verdicts per case (diagnosis, plan, simulator audit), saved the same way;
then each case becomes one record of ``samples/<task>.jsonl``.

The patient and judge backends come from the run's ``helpers`` (``--patient-model``,
``--consult-judge``; the judge defaults to the patient model) through ``open_helper(role)``.
Their prompts reach them through their chat setup (:mod:`chimed_eval.models.chat`), or as plain
text for a model with none.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.types import GenerationConfig, Request, Response, Sample, score_to_record
from chimed_eval.extract.consult import doctor_action, own_turn
from chimed_eval.runs.records import write_json_atomic
from chimed_eval.runs.settings import PreparedTask, RunSettings
from chimed_eval.task.consult import HELPER_MAX_NEW_TOKENS as _CONSULT_BUDGETS

HELPER_MAX_NEW_TOKENS = {**_CONSULT_BUDGETS, "answer_check": 32}


class StateStore:
    """The per-case states of one task: files under ``OUT/consult/<task>/`` (None: in memory)."""

    def __init__(self, out_dir: Path | None, task: str) -> None:
        self.dir = None if out_dir is None else out_dir / "consult" / task
        self.memory: dict[str, dict[str, Any]] = {}

    def path(self, item_id: str) -> Path:
        assert self.dir is not None
        return self.dir / (hashlib.sha256(item_id.encode("utf-8")).hexdigest()[:24] + ".json")

    def load(self, item_id: str, prompt_hash: str) -> dict[str, Any]:
        """The saved state of a case, or a fresh one; a state saved for another opening prompt is
        refused (the same rule as the records)."""
        if self.dir is None or not self.path(item_id).exists():
            return self.memory.setdefault(item_id, fresh_state(item_id, prompt_hash))
        try:
            state = json.loads(self.path(item_id).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.path(item_id)}: unreadable consultation state ({exc}); delete it to redo "
                              "that case") from None
        if state.get("prompt_hash") != prompt_hash or state.get("id") != item_id:
            raise ConfigError(f"{self.path(item_id)}: saved for another prompt or item; use a new --output directory")
        return state

    def save(self, state: dict[str, Any]) -> None:
        if self.dir is None:
            self.memory[state["id"]] = state
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path(state["id"]), state)


def fresh_state(item_id: str, prompt_hash: str) -> dict[str, Any]:
    return {"id": item_id, "prompt_hash": prompt_hash, "turns": [], "doctor_tokens": 0, "ended": None,
            "diagnosis": "", "plan": "", "final_text": "", "verdicts": {}}


def role_setup(backend: str, model: str, args: dict[str, str]) -> Callable[[str], tuple[str, tuple, bool | None]]:
    """How a prompt reaches a helper model: (context, messages, add_special_tokens) through its
    chat setup, or the prompt as plain text for a local model with no chat template."""
    from chimed_eval.backends import backend_capabilities
    from chimed_eval.models.chat import chat_setup, render_messages

    try:
        setup = chat_setup(backend, backend_capabilities(backend), model, args)
    except ConfigError as exc:
        if "no chat template" not in str(exc):
            raise
        return lambda prompt: (prompt, (), None)

    def render(prompt: str) -> tuple[str, tuple, bool | None]:
        context, messages = render_messages(setup, [{"role": "user", "content": prompt}])
        return context, messages, setup.add_special_tokens

    return render


class Helper:
    """A patient or judge backend with its prompt rendering."""

    def __init__(self, role: str, spec: dict[str, Any], backend: Any) -> None:
        self.role, self.backend, self.spec_model = role, backend, str(spec["model"])
        self.render = role_setup(spec["backend"], spec["model"], dict(spec.get("args") or {}))

    def ask(self, keyed_prompts: list[tuple[str, str]], batch_size: int) -> list[str]:
        reqs = []
        for key, prompt in keyed_prompts:
            context, messages, special = self.render(prompt)
            reqs.append(Request(kind="generate", key=key, context=context, add_special_tokens=special, messages=messages,
                                generation=GenerationConfig(max_new_tokens=HELPER_MAX_NEW_TOKENS[self.role])))
        return [r.text or "" for r in _batched(self.backend, reqs, batch_size)]


def _batched(backend: Any, requests: list[Request], batch_size: int) -> list[Response]:
    out: list[Response] = []
    for i in range(0, len(requests), max(1, batch_size)):
        out.extend(backend.run("generate", requests[i:i + batch_size]))
    return out


def patient_text(text: str) -> str:
    """The patient's own words: its reply up to a line it wrote for the doctor (a leading
    ``病人：`` dropped)."""
    import re

    said = re.split(r"\n\s*(?:医生|病人|患者)\s*[：:]", text or "", maxsplit=1)[0]
    return re.sub(r"^\s*(?:病人|患者)\s*[：:]", "", said).strip()


class HelperPool:
    """The run's patient and judge models, opened on first use and closed together; the judge
    shares the patient's backend when it is the same model (``helpers`` of the run settings;
    ``opener(spec)`` opens one backend)."""

    def __init__(self, helpers: dict[str, dict[str, Any]], opener: Callable[[dict[str, Any]], Any]) -> None:
        self.helpers, self.opener = helpers, opener
        self.open: dict[str, Helper] = {}
        self.backends: dict[str, Any] = {}

    def spec(self, role: str) -> dict[str, Any]:
        spec = self.helpers.get(role) or (self.helpers.get("patient") if role == "judge" else None)
        if not spec and role == "answer_check":
            raise ConfigError("the answer check needs --answer-check MODEL")
        if not spec:
            raise ConfigError("a consultation task needs a patient simulator: --patient-model MODEL "
                              "(with --patient-backend, --patient-args; evaluate(patient_model=...))")
        return spec

    def __call__(self, role: str) -> Helper:
        if role not in self.open:
            spec = self.spec(role)
            ident = json.dumps(spec, sort_keys=True)
            if ident not in self.backends:
                self.backends[ident] = self.opener(spec)
            self.open[role] = Helper(role, spec, self.backends[ident])
        return self.open[role]

    def close(self) -> None:
        for b in self.backends.values():
            b.close()
        self.backends.clear()
        self.open.clear()


def run_consultations(p: PreparedTask, doctor: Any, open_helper: Callable[[str], Helper], done: dict[str, Any],
                      store: Any, out_dir: Path | None, batch_size: int, progress: bool) -> None:
    """Run, judge and record every case of ``p`` not yet in ``done`` (module docstring)."""
    task, options = p.task, p.options
    pending = [(s, r) for s, r in zip(p.samples, p.requests) if s.id not in done]
    if not pending:
        return
    states = StateStore(out_dir, task.name)
    cases = [(s, r, states.load(s.id, r.prompt_hash)) for s, r in pending]
    patient = open_helper("patient")
    most = task.max_turns(options)
    rounds = 0
    while any(st["ended"] is None for _, _, st in cases):
        owed = [(s, st) for s, _, st in cases if st["ended"] is None and _owes_reply(st)]
        if owed:
            replies = patient.ask([(f"{s.id}#patient{len(st['turns'])}", task.patient_prompt(s, st["turns"]))
                                   for s, st in owed], batch_size)
            for (s, st), text in zip(owed, replies):
                said = patient_text(text)  # the raw reply kept where the patient's own words were cut from it
                st["turns"].append({"role": "patient", "text": said, **({"raw": text} if text.strip() != said else {})})
                states.save(st)
        active = [(s, r, st) for s, r, st in cases if st["ended"] is None]
        reqs = [r if _turn(st) == 1 else task.doctor_request(s, st["turns"], _turn(st), options) for s, r, st in active]
        for (s, _r, st), resp in zip(active, _batched(doctor, reqs, batch_size)):
            _doctor_turn(task, s, st, resp, most)
            states.save(st)
        rounds += 1
        if progress:
            print(f"consultation {task.name}: round {rounds}, {sum(st['ended'] is None for *_, st in cases)} "
                  f"of {len(cases)} cases still open", file=sys.stderr)
    _judge(task, cases, open_helper, states, batch_size)
    recs = [score_to_record(task.score_consultation(s, r, st)) for s, r, st in cases]
    for rec in recs:
        done[rec["id"]] = rec
    store.append(recs)


def _turn(state: dict[str, Any]) -> int:
    """The doctor's next turn number (1-based)."""
    return 1 + sum(1 for t in state["turns"] if t["role"] == "doctor")


def _owes_reply(state: dict[str, Any]) -> bool:
    """Whether the doctor's last turn was a question still without the patient's reply."""
    turns = state["turns"]
    return bool(turns) and turns[-1]["role"] == "doctor" and doctor_action(turns[-1]["text"])[0] == "ask"


def _doctor_turn(task: Any, sample: Sample, state: dict[str, Any], resp: Response, most: int) -> None:
    text = resp.text or ""
    said = own_turn(text)
    kind, content, plan = doctor_action(said)
    turn = _turn(state)
    state["turns"].append({"role": "doctor", "text": said, **({"raw": text} if text.strip() != said else {})})
    n = (resp.n_tokens or (None,))[0]
    state["doctor_tokens"] = None if n is None or state["doctor_tokens"] is None else state["doctor_tokens"] + n
    if kind == "diagnose":
        state.update(ended="diagnosis", diagnosis=content, plan=plan, final_text=said)
    elif turn >= most:
        state.update(ended="budget", final_text=said)
    elif kind == "tests":
        state["turns"].append({"role": "tests", "text": task.answer_tests(sample, content)})


def _judge(task: Any, cases: list, open_helper: Callable[[str], Helper], states: StateStore, batch_size: int) -> None:
    todo = [(s, st) for s, _r, st in cases if not st["verdicts"]]
    if not todo:
        return
    judge = open_helper("judge")
    keyed = []
    for s, st in todo:
        for what, prompt in task.judge_prompts(s, st).items():
            keyed.append((f"{s.id}#{what}", prompt, s, st, what))
    texts = judge.ask([(k, prompt) for k, prompt, *_ in keyed], batch_size)
    for (_k, _p, _s, st, what), text in zip(keyed, texts):
        st["verdicts"][what] = text
    for _s, st in todo:
        states.save(st)


def open_helper_backend(settings: RunSettings, cache: Any, spec: dict[str, Any]) -> Any:
    """A helper model (``settings.helpers``) opened as the run's own backend is: the run's seed,
    batch size and device, behind the response cache (``cache`` as :func:`chimed_eval.backends.run_cache`
    decides it; None: the default directory where the backend is cached by default)."""
    from chimed_eval.backends import open_backend, run_cache

    return open_backend(spec["backend"], spec["model"], seed=settings.seed, batch_size=settings.batch_size,
                        device=settings.device, model_args=dict(spec.get("args") or {}),
                        cache=run_cache(spec["backend"], False, None) if cache is None else cache)


def run_helper_passes(backend: Any, prepared: Sequence[PreparedTask], interactive: Sequence[PreparedTask],
                      done: dict[str, Any], stores: dict[str, Any], settings: RunSettings, out_dir: Path | None,
                      progress: bool, opener: Callable[[dict[str, Any]], Any]) -> None:
    """The passes that ask other models besides the evaluated one: consultations
    (:mod:`chimed_eval.engine.consult`) and the answer check (:mod:`chimed_eval.engine.answer_check`)."""
    pool = HelperPool(settings.helpers, opener)
    try:
        for p in interactive:
            run_consultations(p, backend, pool, done[p.task.name], stores[p.task.name], out_dir, settings.batch_size,
                              progress)
        if "answer_check" in settings.helpers:
            from chimed_eval.engine.answer_check import run_answer_check

            run_answer_check(prepared, pool, done, stores, settings.batch_size)
    finally:
        pool.close()
