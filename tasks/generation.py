"""Open QA and multi-turn dialogue: free generation scored by BLEU/ROUGE in two protocols.

Tasks (``--limit N`` takes the first N items of the documented order):

* ``chimed-qa``: the ChiMed open-QA test set (not public). Put it at ``<data-dir>/chimed/test.jsonl``
  (``chimed_eval.data.sets.DATA_LOCATIONS`` defines every data folder; ``chimed-eval data`` prints them)
  (or ``test.json`` / ``.csv`` / ``.tsv`` / ``.xlsx``): one record per question with ``question``,
  ``answer_1`` and optionally ``answer_2`` (and ``id``); the authors' processed form
  ``{"prompt": [q], "output": [a]}`` is read too. Each question appears once per reference answer,
  as the authors scored it: item ids ``chimed-<id or line>-<k>`` for answer k, in file order.
* ``cmd-qa``: the public stand-in, CMD internal medicine (``<data-dir>/cmd/internal_medicine_5000-6000.csv``,
  GB18030; the encoding is detected: UTF-8 first, then GB18030). The question is ``ask`` (``title``
  when ``ask`` is empty or ``无``), the reference ``answer``. Rows repeating a (question, answer)
  pair are dropped (first kept). **Test split**: each row's key is
  ``sha256("cmd-qa-split@1" NUL department NUL title NUL ask NUL answer)``; the 500 rows with the
  smallest keys, in key order, are the test set (so ``--limit 100`` is a seeded random 100). Item
  id: ``cmd-`` + the key's first 12 hex digits.
* ``mc-dialogue``: HET-MC (the paper's MC corpus), public sample ``<data-dir>/dialogue/hetmc/test.dialog``
  (18 dialogues); item id ``hetmc-test-<dialogue id>``.
* ``covid-dialogue-zh``: COVID-Dialogue Chinese, ``<data-dir>/dialogue/covid_zh/test_data.json``
  (109 dialogues); item id ``covid-test-<index>`` (0-based position in the file).

Dialogues: consecutive utterances of one speaker are merged, each utterance followed by ``\\n``
(the authors' ``process_multi_turn.py``). The target is the last doctor turn; the context is every
turn before it. A dialogue with no doctor turn after a patient turn has no item.

Prompt variants (``--variant``): ``paper`` (default) renders ``[human]:{question}\\n[bot]:`` for QA
and ``[human]:{p1}[bot]:{d1}...[human]:{pn}[bot]:`` for dialogue (turn texts end in ``\\n``), and
generation stops at the next ``[human]:`` or ``[bot]:`` (the model starting another turn);
``chat`` renders the same turns as user/assistant messages in the model's own format
(:mod:`chimed_eval.models.chat`: the preset's documented chat format from :data:`chimed_eval.prompts.variants.CHAT_FORMATS`,
stopping at that format's turn markers, or the tokenizer's chat template; a model with neither is
refused). A backend that does not apply the stop strings itself is covered too: the generation is
cut at the earliest stop string before scoring, the uncut text kept in ``extra.generation_uncut``.

Decoding (recorded in results.json ``settings.generation`` and in every record): ``greedy`` (the
default) or ``paper-sampling`` (top_p 0.85, temperature 1.0: the authors' settings), both with
up to 512 new tokens; ``--max-new-tokens`` overrides the budget. A sampled item's seed is derived
from (``--seed``, item id) by the runner and the HF backend samples each such item on its own
after ``torch.manual_seed(seed)``, so a sampled run repeats exactly on the same backend and device.

Records hold the raw generation, the reference (``gold``; an item with several references, such as
a ``qa`` file's JSON list, keeps them all in ``extra.references`` and is scored against all), the
rendered context (``prompt``), and
in ``extra``: ``empty`` (nothing but whitespace, punctuation or invisible characters: scored as zero overlap, never dropped),
``truncated`` (the generation used its whole budget: ``n_tokens >= max_new_tokens`` when the
backend reports a token count, else ``len(text) >= max_new_tokens`` characters, a heuristic that
holds for tokenizers with at least one character per token, as usual for Chinese), the decoding,
and the per-item metric statistics (:mod:`chimed_eval.metrics.text`), which ``chimed-eval score``
recomputes from the texts alone. That ``extra`` is typed as
:class:`chimed_eval.evidence.kinds.GenerationEvidence`, and its metrics are declared beside it.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from chimed_eval.models.chat import chatml_renderer, with_system
from chimed_eval.data.sets import CHIMED_QA_TEST
from chimed_eval.core.errors import ConfigError
from chimed_eval.evidence.kinds import GENERATION_CORPUS, GENERATION_SAMPLE, SOURCE_KEYS, Decoding, GenerationEvidence
from chimed_eval.prompts.variants import CHIMED, apply_chat, cut_at_stop
from chimed_eval.extract.reasoning import strip_reasoning
from chimed_eval.task.base import Task
from chimed_eval.task.options import TaskData, TaskRunOptions
from chimed_eval.core.types import GenerationConfig, Message, Metric, Request, Response, Sample, SampleScore

from . import TASKS
from .generation_data import (
    CHIMED_HINT, CMD_FILE, CMD_SPLIT_SALT, CMD_TEST_SIZE, DOCTOR, PATIENT, detect_encoding, dialogue_item, load_chimed_qa,
    load_cmd_qa, load_covid_zh, load_hetmc, merge_turns,
)

__all__ = ["CHIMED_HINT", "CMD_FILE", "CMD_SPLIT_SALT", "CMD_TEST_SIZE", "DECODING", "DEFAULT_DECODING", "DOCTOR",
           "PAPER_STOP", "PATIENT", "PROMPT_VERSION", "GenerationTask", "chatml_renderer", "detect_encoding",
           "dialogue_item", "load_chimed_qa", "load_cmd_qa", "load_covid_zh", "load_hetmc", "merge_turns"]

PROMPT_VERSION = "gen@1"
DECODING = {
    "greedy": {"temperature": 0.0, "top_p": 1.0, "max_new_tokens": 512},
    "paper-sampling": {"temperature": 1.0, "top_p": 0.85, "max_new_tokens": 512},
}
DEFAULT_DECODING = "greedy"
PAPER_STOP = CHIMED.stop  # ("[human]:", "[bot]:"): the next turn of either speaker


# --- the task -------------------------------------------------------------------------------------


class GenerationTask(Task):
    """Generate an answer (QA) or the doctor's next turn (dialogue); see the module docstring."""

    variants = ("paper", "chat")
    default_variant = "paper"

    def __init__(self, name: str, loader: Callable[[Path], TaskData], description: str = "") -> None:
        self.name = name
        self._loader = loader
        self.description = description

    # -- settings
    def check_options(self, options: TaskRunOptions) -> None:
        """``--decoding`` must be a preset of :data:`DECODING`; ``--max-new-tokens`` at least 1."""
        if (options.decoding or DEFAULT_DECODING) not in DECODING:
            raise ConfigError(f"unknown decoding {options.decoding!r}; choose from {sorted(DECODING)}")
        if options.max_new_tokens is not None and options.max_new_tokens < 1:
            raise ConfigError("--max-new-tokens must be >= 1")

    def generation_config(self, options: TaskRunOptions) -> GenerationConfig:
        d = DECODING[options.decoding or DEFAULT_DECODING]
        chat_stop = options.chat.stop if options.chat is not None else ()
        return GenerationConfig(max_new_tokens=options.max_new_tokens or int(d["max_new_tokens"]),
                                stop=PAPER_STOP if options.variant == "paper" else tuple(chat_stop),
                                temperature=float(d["temperature"]), top_p=float(d["top_p"]))

    def generation_record(self, data: TaskData, samples: Sequence[Sample], requests: Sequence[Request],
                          options: TaskRunOptions) -> dict[str, Any]:
        """What results.json records under ``settings.generation.<task>``."""
        decoding = options.decoding or DEFAULT_DECODING
        d = DECODING[decoding]
        return {"decoding": decoding, "temperature": d["temperature"], "top_p": d["top_p"],
                "max_new_tokens": options.max_new_tokens or d["max_new_tokens"],
                "max_new_tokens_overridden": options.max_new_tokens is not None,
                "seed": "per item: runner.item_seed(--seed, item id)" if d["temperature"] > 0 else None,
                "chat_template": options.chat.label if options.chat is not None else None,
                "prompt_version": PROMPT_VERSION}

    def scoring_mode(self, variant: str) -> str:
        return "generate"

    # -- data and prompts
    def load(self, data_dir: Path) -> TaskData:
        return self._loader(data_dir)

    def render(self, sample: Sample, options: TaskRunOptions) -> tuple[str, tuple[Message, ...]]:
        """The context, and for a chat API the messages it stands for (else none)."""
        turns = sample.turns or ((PATIENT, str(sample.input).strip()),)
        if options.variant == "paper":
            if sample.turns is None:
                return apply_chat("chimed", str(sample.input).strip()), ()
            return "".join(("[human]:" if role == PATIENT else "[bot]:") + text for role, text in turns) + "[bot]:", ()
        if options.chat is None:
            raise ConfigError(f"task {self.name!r}: the chat variant needs the model's chat template "
                              "(chimed-eval run sets it from the model's tokenizer); use --variant paper")
        msgs = [{"role": "user" if role == PATIENT else "assistant", "content": text.rstrip("\n")} for role, text in turns]
        msgs = with_system(msgs, options.system_prompt)  # --system-prompt: a system message first
        messages = tuple(Message(m["role"], m["content"]) for m in msgs) if options.chat.messages else ()  # type: ignore[arg-type]
        return options.chat.render(msgs), messages

    def build_requests(self, data: TaskData, samples: Sequence[Sample], options: TaskRunOptions) -> list[Request]:
        from chimed_eval.metrics.text import TEXT_EXTRA_HINT, missing_text_packages

        if options.shots:
            raise ConfigError(f"task {self.name!r} is 0-shot; pass --shots 0 or leave --shots out")
        if missing := missing_text_packages():  # before any generation, not at scoring
            raise ConfigError(f"task {self.name!r}: {TEXT_EXTRA_HINT} (missing: {', '.join(missing)})")
        gen = self.generation_config(options)
        special = options.chat.add_special_tokens if options.variant == "chat" and options.chat is not None else None
        out = []
        for s in samples:
            context, messages = self.render(s, options)
            out.append(Request(kind="generate", key=s.id, context=context, generation=gen, add_special_tokens=special,
                               messages=messages))
        return out

    def oracle_output(self, sample: Sample, request: Request, options: TaskRunOptions) -> str:
        return str(sample.target)

    # -- scoring
    def score(self, data: TaskData, sample: Sample, request: Request, response: Response,
              options: TaskRunOptions) -> SampleScore:
        g = request.generation or self.generation_config(options)
        raw = response.text or ""
        cut = cut_at_stop(raw, g.stop)  # a backend that ignored the stop strings
        text, trace = strip_reasoning(cut, options.think_markers)  # <think> trace off; none: unchanged, no keys
        ev = GenerationEvidence(
            max_new_tokens=g.max_new_tokens, n_tokens=response.n_tokens[0] if response.n_tokens else None,
            decoding=Decoding(options.decoding or DEFAULT_DECODING, g.temperature, g.top_p, g.seed, tuple(g.stop)),
            prompt_version=PROMPT_VERSION, source=tuple((k, v) for k, v in sample.metadata.items() if k in SOURCE_KEYS),
            generation_uncut=raw if cut != raw else None,
            references=tuple(str(r) for r in sample.metadata.get("references") or ()))
        base = SampleScore(id=sample.id, subject=sample.subject, prompt=request.context, prompt_hash=request.prompt_hash,
                           gold=str(sample.target), prediction=None, score=0.0, generation=text,
                           extra={**ev.to_extra(), **trace})
        return GENERATION_SAMPLE(base, ev, options.variant)

    def rescore(self, record: Mapping[str, object], variant: str) -> SampleScore:
        from chimed_eval.core.types import record_to_score

        s = record_to_score(record)
        return GENERATION_SAMPLE(s, GenerationEvidence.from_extra(s.extra), variant)

    def aggregate(self, scores: Sequence[SampleScore], variant: str, seed: int) -> tuple[list[Metric], dict[str, dict[str, float | int]]]:
        return GENERATION_CORPUS(scores, [GenerationEvidence.from_extra(s.extra) for s in scores], variant, seed)


# --- registration ---------------------------------------------------------------------------------


def _add(name: str, loader: Callable[[Path], TaskData], description: str) -> None:
    TASKS.add(name, lambda: GenerationTask(name, loader, description), description)


_add("chimed-qa", load_chimed_qa,
     f"ChiMed open QA (you provide data/{CHIMED_QA_TEST}: question, answer_1, answer_2); one item per answer; BLEU/ROUGE")
_add("cmd-qa", partial(load_cmd_qa, test_size=CMD_TEST_SIZE),
     "CMD internal-medicine QA (GB18030), fixed seeded 500-item test split; BLEU/ROUGE")
_add("mc-dialogue", partial(load_hetmc, split="test"),
     "HET-MC (MC) sample test.dialog, 18 dialogues: generate the last doctor turn; BLEU/ROUGE")
_add("covid-dialogue-zh", partial(load_covid_zh, split="test"),
     "COVID-Dialogue Chinese test split, 109 dialogues: generate the last doctor turn; BLEU/ROUGE")
