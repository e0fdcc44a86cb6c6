"""``chimed-eval run``: evaluate a model on tasks into an output directory (resumable, shardable).

Nothing here imports torch at import time: the backend loads only inside :func:`run`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chimed_eval.cli.rebuild import task_getter
from chimed_eval.cli.summary import print_summary
from chimed_eval.core.errors import ConfigError
from chimed_eval.core.kv import parse_kv
from chimed_eval.data.locations import default_data_dir

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


def run(a: argparse.Namespace) -> int:
    """Evaluate the model on the tasks into --output (resumable); the figures table after."""
    from chimed_eval.backends import BACKENDS, open_backend
    from chimed_eval.evidence.expand import parse_shuffle_choices
    from chimed_eval.engine.runner import RunSettings, evaluate

    names = [t.strip() for t in a.tasks.split(",") if t.strip()]
    if not names:
        raise ConfigError("--tasks is empty")
    if a.limit is not None and a.limit < 1:
        raise ConfigError("--limit must be >= 1")
    if a.max_new_tokens is not None and a.max_new_tokens < 1:
        raise ConfigError("--max-new-tokens must be >= 1")
    model_args = parse_kv(a.model_args, "--model-args")
    from chimed_eval.backends import check_backend_args

    check_backend_args(a.backend, model_args)  # before anything is written or echoed
    if a.data_parallel > 1:
        return _run_data_parallel(a, model_args)
    if a.data_parallel < 1:
        raise ConfigError("--data-parallel must be >= 1")
    shard = None
    if a.shard:
        from chimed_eval.engine.parallel import shard_dir, shard_from_env

        shard = shard_from_env() if a.shard == "auto" else a.shard
        a.output = shard_dir(a.output, shard)  # checks the I/N spec
    from chimed_eval.tasks.factory import build_tasks

    built = build_tasks(names, parse_kv(a.task_args, "--task-args"), a.task_config)
    tasks = [b.task for b in built]
    from chimed_eval.cli.judge import check_run_flags

    check_run_flags(a, tasks)  # --judge: refused before the run, not after it
    BACKENDS.get(a.backend)  # an unknown backend fails here, before any data or model loads
    settings = RunSettings(model=a.model, backend=a.backend, variant=a.variant, shots=a.shots, seed=a.seed,
                           limit=a.limit, batch_size=a.batch_size, device=a.device, dtype=a.dtype,
                           model_args=model_args, data_dir=a.data_dir or default_data_dir(),
                           max_new_tokens=a.max_new_tokens, decoding=a.decoding, shard=shard,
                           shuffle_choices=parse_shuffle_choices(a.shuffle_choices),
                           repeats=_at_least(a.repeats, 1, "--repeats") if a.repeats != 1 else None,
                           think_markers=_think_markers(a.think_markers), apply_chat_template=a.apply_chat_template,
                           system_prompt=a.system_prompt or None, fewshot_as_multiturn=a.fewshot_as_multiturn,
                           task_sources=_task_sources(built, a.task_config))
    if a.variant == "chat":
        _set_chat_template(tasks, a.backend, a.model, model_args)

    from chimed_eval.models.presets import check_backend

    check_backend(a.model, a.backend)

    # the fake backend is cached only in a directory given explicitly
    cache = False if a.no_cache or (a.backend == "fake" and a.cache is None) else a.cache

    def factory(script=None):  # script: the fake oracle's answers (runner.oracle_script)
        return open_backend(a.backend, a.model, seed=a.seed, batch_size=a.batch_size, device=a.device,
                            dtype=a.dtype, model_args=model_args, cache=cache, script=script)

    try:
        run = evaluate(tasks, factory, settings, a.output, progress=not a.no_progress)
    except KeyboardInterrupt:
        print(f"\nchimed-eval: interrupted; the items finished so far are saved in {a.output / 'samples'}/. "
              "Run the same command again to resume.", file=sys.stderr)
        return 130
    print_summary(run)
    print(f"\nresults: {a.output / 'results.json'}\nsamples: {a.output / 'samples'}/")
    if a.judge:
        from chimed_eval.cli.judge import judge_after_run

        return judge_after_run(a, run)
    return 0


def _think_markers(text: str | None) -> str | None:
    """``--think-markers`` checked (:func:`chimed_eval.extract.reasoning.parse_think_markers`); None when
    absent or the default, so the default is recorded the same way whether given or not."""
    from chimed_eval.extract.reasoning import DEFAULT_THINK_MARKERS, parse_think_markers

    return None if text is None or parse_think_markers(text) == DEFAULT_THINK_MARKERS else text


def _at_least(k: int | None, low: int, flag: str) -> int | None:
    """``k`` when given and >= ``low`` (None when not given); a ConfigError naming the flag otherwise."""
    if k is not None and k < low:
        raise ConfigError(f"{flag} {k}: expected an integer >= {low}")
    return k


def _task_sources(built, task_config: Path | None) -> dict:
    """What defines each task beyond its data files, recorded in run.json (compared on resume,
    and how ``score`` rebuilds the task): its type and --task-args, or the --task-config file's
    content hash."""
    from chimed_eval.files.text import read_task_config
    from chimed_eval.core.types import sha256_text

    config_sha = None
    if task_config is not None:  # read as build_tasks read it: a regular file of a bounded size
        config_sha = sha256_text(read_task_config(task_config).decode("utf-8", "replace"))
    return {b.task.name: b.source(config_sha) for b in built}


def _run_data_parallel(a: argparse.Namespace, model_args: dict[str, str]) -> int:
    from chimed_eval.engine.merge import check_merge_target, merge_shards
    from chimed_eval.engine.parallel import run_data_parallel

    if a.shard:
        raise ConfigError("--data-parallel and --shard do not combine: --data-parallel makes the shards itself")
    from chimed_eval.runs.outdir import OutLock

    per = int(model_args.get("tensor_parallel_size", 1)) * int(model_args.get("pipeline_parallel_size", 1))
    with OutLock(a.output):
        check_merge_target(a.output, ("shards",))  # before any shard runs: empty, or an earlier merge
        dirs = run_data_parallel(a.argv, a.data_parallel, a.output, per if a.backend in ("hf", "vllm") else 0)
        run = merge_shards(dirs, a.output, task_getter(a.task_config, dirs[0]), locked=True, allowed_extra=("shards",))
    print_summary(run)
    print(f"\nresults: {a.output / 'results.json'} (merged from {len(dirs)} shards in {a.output / 'shards'})")
    return 0


def _set_chat_template(tasks, backend: str, model: str, model_args: dict[str, str]) -> None:
    """Refuse early a ``chat`` variant this model has no format for: the preset's documented chat
    format, the tokenizer's chat template, or the server's (see :mod:`chimed_eval.models.chat`). The
    runner hands the same (memoised) setup to the tasks in their run options; nothing is loaded
    when no selected task has a chat variant."""
    if any("chat" in t.variants for t in tasks):
        from chimed_eval.models.chat import run_chat_setup

        run_chat_setup(backend, model, model_args)
