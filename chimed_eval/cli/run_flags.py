"""The flags of ``chimed-eval run`` and the :class:`RunConfig` they make.

Apart from the command module so that ``run --config`` files (:mod:`chimed_eval.cli.config_file`)
are read by the same flags, without importing the command (or the wiring) back.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from chimed_eval.cli.helper_flags import config_fields
from chimed_eval.cli.summary import add_cost_flags
from chimed_eval.core.errors import ConfigError
from chimed_eval.core.kv import parse_kv
from chimed_eval.engine.api import RunConfig


def add_run_arguments(r: argparse.ArgumentParser) -> None:
    """Every flag of ``run`` (the judge's from :mod:`chimed_eval.cli.judge`)."""
    r.add_argument("--config", type=Path, default=None, metavar="FILE",
                   help="run options from a .yaml/.toml/.json file (any flag below, lists of models and tasks); "
                        "flags given here win")
    r.add_argument("--model", default=None,
                   help="preset (chimed-eval models), local dir, .gguf file or hub id (required unless in --config)")
    r.add_argument("--tasks", default=None, help="comma-separated task names (chimed-eval tasks)")
    r.add_argument("--output", "--output_path", dest="output", default=None, type=Path,
                   help="output directory (resumable)")
    r.add_argument("--backend", default=None, help="hf (default), vllm, openai (OpenAI-compatible API) or fake")
    r.add_argument("--model-args", "--model_args", dest="model_args", default="",
                   help="k=v,... passed to the backend (revision=, trust_remote_code=, hub=modelscope, ...)")
    r.add_argument("--data-dir", default=None, help="data in the layout of shared/data (default: $CHIMED_EVAL_DATA, ./data or ../shared/data)")
    r.add_argument("--limit", type=_limit, default=None,
                   help="first N items of each task, in the task's documented order; 0 < x < 1: that fraction "
                        "of each task's items, rounded up")
    r.add_argument("--shots", "--num_fewshot", dest="shots", type=int, default=None,
                   help="few-shot examples (default: the task's own, 0 for exams)")
    r.add_argument("--variant", default=None,
                   help="prompt variant: paper | lm-eval | generate | cot (exams; cot: reasoning then 答案：X); paper | chat (open QA, dialogue); "
                        "next-token | generate (scales)")
    r.add_argument("--batch-size", "--batch_size", dest="batch_size", type=_batch_size, default=8,
                   help="requests per batch, or auto: the largest that fits (hf on a GPU: tried on the longest "
                        "requests, halved on out-of-memory; 8 on a CPU; vllm: its own scheduling); recorded")
    r.add_argument("--seed", type=int, default=1234)
    r.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    r.add_argument("--dtype", default=None, help="float32 | bfloat16 | float16 | auto")
    r.add_argument("--max-new-tokens", type=int, default=None,
                   help="generation budget of open-QA/dialogue tasks (overriding the decoding preset's 512) and of "
                        "the exam variants generate (16) and cot (512); "
                        "caps each NER record's own budget (recorded)")
    r.add_argument("--gen_kwargs", "--gen-kwargs", dest="gen_kwargs", default=None, metavar="K=V,...",
                   help="decoding of every generated answer: temperature, top_p, top_k, max_gen_toks, do_sample, "
                        "until (hf, vllm, openai); recorded and part of the resume key")
    r.add_argument("--decoding", default=None, choices=("greedy", "paper-sampling"),
                   help="open-QA/dialogue and exam generate-variant decoding: greedy (default) or paper-sampling (top_p 0.85, temperature 1.0, "
                        "seeded per item from --seed)")
    r.add_argument("--shuffle-choices", default=None, metavar="K|circular",
                   help="score each multiple-choice item under K seeded option orders (reports all_orders_acc), "
                        "or 'circular': under its n rotations, CircularEval (reports circular_acc); also acc "
                        "(unshuffled pass), acc_shuffled, pred_share_<letter>, position_bias")
    r.add_argument("--repeats", type=int, default=None, metavar="K",
                   help="answer each item K times with sampled decoding (--decoding paper-sampling), each repeat "
                        "seeded per (seed, item, k); reports avg@K, maj@K, pass@1, pass@K for exams")
    r.add_argument("--apply-chat-template", action="store_true",
                   help="render exam and open-QA/dialogue prompts with the model's chat template (the tokenizer's; "
                        "the server's on --backend openai; ChatML on the fake backend); letter-scored exam "
                        "variants then score the option letters after the open assistant turn")
    r.add_argument("--system-prompt", default=None, metavar="TEXT",
                   help="a system message before the prompt (with --apply-chat-template or --variant chat)")
    r.add_argument("--fewshot-as-multiturn", action="store_true",
                   help="with --apply-chat-template: each shot as a user question and an assistant answer")
    r.add_argument("--think-markers", default=None, metavar="START,END",
                   help="reasoning-trace markers split off generations before extraction and scoring, the trace "
                        "kept in the record (default: <think>,</think>; START may be empty; 'none': off)")
    r.add_argument("--task-args", default="", help="k=v,... for the generic mcq / ner / scale tasks (path=, question=, choices=A;B;C;D, answer=, ...)")
    r.add_argument("--task-config", type=Path, default=None, help="JSON/TOML file defining your own mcq tasks")
    r.add_argument("--no-progress", action="store_true")
    r.add_argument("--all-metrics", action="store_true", help="print every figure (default: the headline figures of each task; all are in results.json)")
    r.add_argument("--cache", type=Path, default=None,
                   help="response cache directory (default: $CHIMED_EVAL_CACHE/responses; the fake backend only when given)")
    r.add_argument("--no-cache", action="store_true", help="do not read or write the response cache")
    r.add_argument("--shard", default=None,
                   help="I/N: score only items I, I+N, I+2N, ... of every task (one process, GPU or node of N); "
                        "'auto' takes I and N from RANK/WORLD_SIZE, SLURM_PROCID/SLURM_NTASKS or VLLM_DP_RANK/VLLM_DP_SIZE; "
                        "'{shard}' in --output becomes I-of-N. Merge with: chimed-eval merge")
    add_cost_flags(r)
    r.add_argument("--data-parallel", type=int, default=1, metavar="N",
                   help="run N shards at once as Ray workers (a local Ray instance unless $RAY_ADDRESS; one engine "
                        "each, asking tensor_parallel_size GPUs where there are GPUs) and merge them into --output")
    from chimed_eval.cli.judge import add_run_flags

    add_run_flags(r)  # --judge, --judge-backend, --judge-args, ... (chimed_eval/cli/judge.py)
    from chimed_eval.cli.helper_flags import add_run_flags as add_helper_flags

    add_helper_flags(r)  # --patient-model, --consult-judge, --max-turns, --answer-check (chimed_eval/cli/helper_flags.py)


def _limit(text: str) -> int | float:
    from chimed_eval.engine.api import parse_limit

    try:
        return parse_limit(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None


def _batch_size(text: str) -> int | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1 or auto, not {text!r}")
    return value


def run_config(a: argparse.Namespace) -> RunConfig:
    """The ``run`` flags as the one typed configuration :func:`chimed_eval.evaluate` takes."""
    return RunConfig(variant=a.variant, shots=a.shots, limit=a.limit, batch_size=a.batch_size, seed=a.seed,
                     device=a.device, dtype=a.dtype, max_new_tokens=a.max_new_tokens, decoding=a.decoding,
                     shuffle_choices=a.shuffle_choices, repeats=a.repeats, think_markers=a.think_markers,
                     apply_chat_template=a.apply_chat_template, system_prompt=a.system_prompt,
                     fewshot_as_multiturn=a.fewshot_as_multiturn, task_args=parse_kv(a.task_args, "--task-args"),
                     task_config=a.task_config, cache=a.cache, use_cache=not a.no_cache, shard=a.shard,
                     progress=not (a.no_progress or getattr(a, "quiet", False)), gen_kwargs=a.gen_kwargs,
                     price=a.price, max_cost=a.max_cost, max_tokens=a.max_tokens, **config_fields(a))
