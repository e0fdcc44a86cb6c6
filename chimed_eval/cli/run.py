"""``chimed-eval run``: evaluate a model on tasks into an output directory (resumable, shardable).

Nothing here imports torch at import time: the backend loads only inside :func:`run`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chimed_eval.cli.helper_flags import config_fields
from chimed_eval.cli.rebuild import task_getter
from chimed_eval.cli.summary import print_summary
from chimed_eval.core.errors import ConfigError
from chimed_eval.core.kv import parse_kv
from chimed_eval.engine.api import RunConfig
from chimed_eval.runs.reader import results_json, samples_dir

NAME = "run"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``run`` subcommand and its flags (the judge's from :mod:`chimed_eval.cli.judge`)."""
    r = sub.add_parser(NAME, help="evaluate a model on tasks")
    r.add_argument("--model", required=True, help="preset (chimed-eval models), local dir, .gguf file or hub id")
    r.add_argument("--tasks", required=True, help="comma-separated task names (chimed-eval tasks)")
    r.add_argument("--output", required=True, type=Path, help="output directory (resumable)")
    r.add_argument("--backend", default="hf", help="hf (default), openai (OpenAI-compatible API) or fake")
    r.add_argument("--model-args", default="", help="k=v,... passed to the backend (revision=, trust_remote_code=, ...)")
    r.add_argument("--data-dir", default=None, help="data in the layout of shared/data (default: $CHIMED_EVAL_DATA, ./data or ../shared/data)")
    r.add_argument("--limit", type=int, default=None, help="first N items of each task, in the task's documented order")
    r.add_argument("--shots", type=int, default=None, help="few-shot examples (default: the task's own, 0 for exams)")
    r.add_argument("--variant", default=None,
                   help="prompt variant: paper | lm-eval | generate | cot (exams; cot: reasoning then 答案：X); paper | chat (open QA, dialogue); "
                        "next-token | generate (scales)")
    r.add_argument("--batch-size", type=int, default=8)
    r.add_argument("--seed", type=int, default=1234)
    r.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    r.add_argument("--dtype", default=None, help="float32 | bfloat16 | float16 | auto")
    r.add_argument("--max-new-tokens", type=int, default=None,
                   help="generation budget of open-QA/dialogue tasks (overriding the decoding preset's 512) and of "
                        "the exam variants generate (16) and cot (512); "
                        "caps each NER record's own budget (recorded)")
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
    r.add_argument("--cache", type=Path, default=None,
                   help="response cache directory (default: $CHIMED_EVAL_CACHE/responses; the fake backend only when given)")
    r.add_argument("--no-cache", action="store_true", help="do not read or write the response cache")
    r.add_argument("--shard", default=None,
                   help="I/N: score only items I, I+N, I+2N, ... of every task (one process, GPU or node of N); "
                        "'auto' takes I and N from RANK/WORLD_SIZE, SLURM_PROCID/SLURM_NTASKS or VLLM_DP_RANK/VLLM_DP_SIZE; "
                        "'{shard}' in --output becomes I-of-N. Merge with: chimed-eval merge")
    r.add_argument("--data-parallel", type=int, default=1, metavar="N",
                   help="run N shards at once on this machine (one engine each; GPUs split into N groups of "
                        "tensor_parallel_size) and merge them into --output")
    from chimed_eval.cli.judge import add_run_flags

    add_run_flags(r)  # --judge, --judge-backend, --judge-args, ... (chimed_eval/cli/judge.py)
    from chimed_eval.cli.helper_flags import add_run_flags as add_helper_flags

    add_helper_flags(r)  # --patient-model, --consult-judge, --max-turns, --answer-check (chimed_eval/cli/helper_flags.py)


def run_config(a: argparse.Namespace) -> RunConfig:
    """The ``run`` flags as the one typed configuration :func:`chimed_eval.evaluate` takes."""
    return RunConfig(variant=a.variant, shots=a.shots, limit=a.limit, batch_size=a.batch_size, seed=a.seed,
                     device=a.device, dtype=a.dtype, max_new_tokens=a.max_new_tokens, decoding=a.decoding,
                     shuffle_choices=a.shuffle_choices, repeats=a.repeats, think_markers=a.think_markers,
                     apply_chat_template=a.apply_chat_template, system_prompt=a.system_prompt,
                     fewshot_as_multiturn=a.fewshot_as_multiturn, task_args=parse_kv(a.task_args, "--task-args"),
                     task_config=a.task_config, cache=a.cache, use_cache=not a.no_cache, shard=a.shard,
                     progress=not a.no_progress, **config_fields(a))


def run(a: argparse.Namespace) -> int:
    """Evaluate the model on the tasks into --output (resumable); the figures table after.
    Parse, build one :class:`RunConfig`, run it as :func:`chimed_eval.evaluate` does."""
    from chimed_eval.backends import check_backend_args
    from chimed_eval.cli.judge import check_run_flags
    from chimed_eval.engine.api import plan_run, run_plan
    from chimed_eval.tasks.factory import build_tasks

    names = [t.strip() for t in a.tasks.split(",") if t.strip()]
    if not names:
        raise ConfigError("--tasks is empty")
    config = run_config(a)
    config.check()
    model_args = parse_kv(a.model_args, "--model-args")
    check_backend_args(a.backend, model_args)  # before anything is written or echoed
    if a.data_parallel > 1:
        return _run_data_parallel(a, model_args)
    if a.data_parallel < 1:
        raise ConfigError("--data-parallel must be >= 1")
    plan = plan_run(a.model, names, backend=a.backend, model_args=model_args, data_dir=a.data_dir or None,
                    output=a.output, config=config, resolve_tasks=build_tasks,
                    check_tasks=lambda tasks: check_run_flags(a, tasks))  # --judge: refused before the run
    a.output = plan.output  # a --shard run's own directory
    try:
        result = run_plan(plan)
    except KeyboardInterrupt:
        print(f"\nchimed-eval: interrupted; the items finished so far are saved in {samples_dir(a.output)}/. "
              "Run the same command again to resume.", file=sys.stderr)
        return 130
    print_summary(result)
    print(f"\nresults: {results_json(a.output)}\nsamples: {samples_dir(a.output)}/")
    if a.judge:
        from chimed_eval.cli.judge import judge_after_run

        return judge_after_run(a, result)
    return 0


def _run_data_parallel(a: argparse.Namespace, model_args: dict[str, str]) -> int:
    from chimed_eval.backends import backend_capabilities
    from chimed_eval.engine.merge import check_merge_target, merge_shards
    from chimed_eval.engine.parallel import run_data_parallel

    if a.shard:
        raise ConfigError("--data-parallel and --shard do not combine: --data-parallel makes the shards itself")
    from chimed_eval.runs.outdir import OutLock

    per = int(model_args.get("tensor_parallel_size", 1)) * int(model_args.get("pipeline_parallel_size", 1))
    with OutLock(a.output):
        check_merge_target(a.output, ("shards",))  # before any shard runs: empty, or an earlier merge
        gpus = per if backend_capabilities(a.backend).local_weights else 0  # GPUs per shard: local weights only
        dirs = run_data_parallel(a.argv, a.data_parallel, a.output, gpus)
        run = merge_shards(dirs, a.output, task_getter(a.task_config, dirs[0]), locked=True, allowed_extra=("shards",))
    print_summary(run)
    print(f"\nresults: {results_json(a.output)} (merged from {len(dirs)} shards in {a.output / 'shards'})")
    return 0
