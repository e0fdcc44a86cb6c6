"""Few-shot clinical NER: CCKS-2019, ChiMST, and the generic ``ner`` task for your own files.

Tasks (``--limit N`` takes the first N records in file order):

* ``ccks2019-ner-paper``: the first 200 records of the CCKS-2019 test set (the paper's set);
  ``ccks2019-ner``: all 379. Shots from the two training files. Six types, the file's own labels:
  疾病和诊断, 影像检查, 实验室检验, 手术, 药物, 解剖部位 (aliases such as 检查 -> 影像检查 and
  检验 -> 实验室检验 are accepted in answers).
* ``chimst-ner`` / ``chimst-ner-paper`` (first 100): ChiMST has no public copy; the user provides
  ``<data-dir>/chimst/test.jsonl`` (or ``test.bio`` / ``test.conll`` / ``test.txt``), optionally
  ``train.*`` for shots and ``types.txt`` (one type per line) for the inventory, which is
  otherwise the gold types in order of first appearance.
* ``ner``: any JSONL, JSON-array or BIO file, configured by ``--task-args`` or a ``type = "ner"`` entry in a
  ``--task-config`` file (see :class:`NerSpec`).

Protocol. The paper's baselines were 5-shot (ChiMed-GPT itself 0-shot), so the named tasks
default to 5 shots. Shots are drawn once per run, seeded by ``--seed``, from the training records
of at most ``shot_max_chars`` characters (default 300; CCKS records average 350-460), so every
request shares one few-shot prefix (``Request.prefix``: the backend can compute its KV cache
once). A prompt longer than ``max_prompt_tokens`` (default 3,000, estimated without a tokenizer
as one token per CJK character plus one per three other characters: what fits a 4,096-token
context such as ChiMed-GPT's with room for the answer) drops shots from the end until it fits;
the test text is never cut, and ``shots_used`` / ``prompt_truncated`` / ``prompt_tokens_est`` in
each record say what happened (``over_budget`` when even the 0-shot prompt is longer).
``max_new_tokens`` is proportional to the record's length (paper: 1 token per text character,
64..1024; json: 2 per character, 128..2048), since an answer lists about 0.43 characters of
entities per text character (at most 0.88 in CCKS-2019). ``--max-new-tokens N`` caps it: a record
gets ``min(its own budget, N)``; each record keeps ``max_new_tokens`` (used),
``max_new_tokens_own`` and ``max_new_tokens_capped``, and results.json ``settings.generation``
the cap, the rule and the range used. Decoding is greedy (``--decoding`` does not apply);
generation stops at the next ``\n文本：`` (the shots' record separator) or three newlines. A
generation that used its whole budget is flagged ``truncated`` (``truncated_generation_rate``); one
from which no entity was read because it is only explanation (``以下是实体：``) is flagged
``explanation_only`` (``explanation_only_rate``), since it is neither an answer of "no entity" nor
an extraction failure.

Prompt variants: ``paper`` (one ``实体 类型`` per line, as the authors scored it) and ``json`` (a
JSON list of ``{"entity", "type"}``); both state the type inventory. Shots and the oracle answer
list every gold mention in text order (repeats included), so the fake ``oracle`` backend scores
100 under every protocol.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

from .. import TASKS
from .datasets import (CCKS_ALIASES, CCKS_TYPES, CHIMST_HINT, _read_types_file, gold_types, load_ccks2019,
                       load_chimst, load_spec, mentions)
from .spec import NER_KEYS, NerSpec, load_ner_specs, spec_from_args
from .ner_task import (INSTRUCTION, NEW_TOKENS, PROMPT_VERSION, STOP, NerTask, PromptPlan, estimate_tokens, judge_ner,
                   make_ner_task, make_ner_task_from_args, rescoring_task)

# the names this package had as one module (tasks/ner.py), importable from here as before
__all__ = ["CCKS_ALIASES", "CCKS_TYPES", "CHIMST_HINT", "INSTRUCTION", "NER_KEYS", "NEW_TOKENS", "PROMPT_VERSION",
           "STOP", "NerSpec", "NerTask", "PromptPlan", "_read_types_file", "estimate_tokens", "gold_types",
           "judge_ner", "load_ccks2019", "load_chimst", "load_ner_specs", "load_spec", "make_ner_task",
           "make_ner_task_from_args", "mentions", "rescoring_task", "spec_from_args"]


# --- registration --------------------------------------------------------------------------------


def _register(name: str, make: Callable[[], NerTask], description: str) -> None:
    TASKS.add(name, make, description)


def _ccks(name: str, first: int | None) -> NerTask:
    return NerTask(name, partial(load_ccks2019, first=first), types=CCKS_TYPES, aliases=CCKS_ALIASES,
                   description="CCKS-2019 clinical NER", default_shots=5)


def _chimst(name: str, first: int | None) -> NerTask:
    return NerTask(name, partial(load_chimst, first=first), types=None, description="ChiMST medical NER",
                   default_shots=5)


_register("ccks2019-ner-paper", lambda: _ccks("ccks2019-ner-paper", 200),
          "CCKS-2019 clinical NER, first 200 test records (the paper's set); 5-shot from train; generate")
_register("ccks2019-ner", lambda: _ccks("ccks2019-ner", None),
          "CCKS-2019 clinical NER, all 379 test records; 5-shot from train; generate")
_register("chimst-ner-paper", lambda: _chimst("chimst-ner-paper", 100),
          "ChiMST medical term NER (you provide data/chimst/test.jsonl or test.bio), first 100 records")
_register("chimst-ner", lambda: _chimst("chimst-ner", None),
          "ChiMST medical term NER (you provide data/chimst/test.jsonl or test.bio); all records")
