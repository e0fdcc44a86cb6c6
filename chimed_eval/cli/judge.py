"""``chimed-eval judge OUT --judge MODEL[,MODEL...]`` and ``chimed-eval run ... --judge MODEL``.

``judge`` grades the open-QA and dialogue answers of a finished (or interrupted) run with one or
more judge models (:mod:`.pipeline`); ``run --judge`` does the same on the run's fresh output
once its evaluation succeeds. Both print a short table and write ``OUT/judge/<dir>/``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.kv import parse_kv

NAME = "judge"


def _names(text: str | None) -> tuple[str, ...]:
    """A comma-separated list (``--judge A,B``, ``--tasks``), blanks dropped."""
    return tuple(j.strip() for j in (text or "").split(",") if j.strip())


def add_parser(sub) -> None:
    """The ``judge`` subcommand and its flags."""
    j = sub.add_parser(NAME, help="grade a run's open-QA / dialogue answers with judge models (pointwise or pairwise)",
                       description="Grade the answers of a run's open-QA and dialogue tasks with one or more judge "
                                   "models; verdicts, figures and judge-bias measures go to OUT/judge/<protocol>-<hash>/.")
    j.add_argument("output", type=Path, help="the run's output directory (OUT)")
    j.add_argument("--judge", required=True, metavar="MODEL[,MODEL...]",
                   help="judge model(s): a preset, local dir, hub id or API model; several: a panel with agreement")
    j.add_argument("--judge-backend", default="hf", help="hf (default), vllm, openai or fake (judge:first|second|"
                                                         "longer|shorter|invalid|score-N|reference)")
    j.add_argument("--judge-args", default="", help="k=v,... for the judge backend (as --model-args of run)")
    j.add_argument("--protocol", default=None, choices=("pointwise", "pairwise", "rubric"),
                   help="pointwise (default for open-QA/dialogue tasks), pairwise, or rubric (the default when OUT "
                        "holds only rubric tasks: each criterion judged met or not)")
    j.add_argument("--baseline", type=Path, default=None,
                   help="pairwise: the run (OUT2) whose answers are compared; pointwise: a second run whose answers "
                        "are graded too (tells a judge's leniency from its self-preference)")
    j.add_argument("--rubric", default=None, help="pointwise rubric: medical (accuracy, helpfulness, safety; the "
                                                   "default) or cmb-clin (CMB-Clin's four criteria; the default when "
                                                   "only cmb-clin is judged)")
    j.add_argument("--tasks", default=None, help="comma-separated (default: every open-QA/dialogue task of OUT)")
    j.add_argument("--limit", type=int, default=None, help="first N items of each task")
    j.add_argument("--aggregate", default=None, choices=("mean", "majority"),
                   help="several judges: mean (pointwise default) or majority (pairwise default)")
    j.add_argument("--cache", type=Path, default=None,
                   help="response cache directory (default: $CHIMED_EVAL_CACHE/responses; fake judges only when given)")
    j.add_argument("--no-cache", action="store_true", help="do not read or write the response cache")
    j.add_argument("--batch-size", type=int, default=8)
    j.add_argument("--device", default=None)
    j.add_argument("--dtype", default=None)
    j.add_argument("--seed", type=int, default=1234, help="seed of the bootstrap intervals (and of fake judges)")
    j.add_argument("--max-new-tokens", type=int, default=512, help="the judge's budget per verdict (default 512)")
    j.add_argument("--verdict", default="generate", choices=("generate", "logprobs"),
                   help="generate (default): the judge writes its verdict, which is parsed; logprobs: the verdict is "
                        "read from the judge's next-token probabilities after a prefilled answer (G-Eval; hf, vllm)")
    j.add_argument("--no-progress", action="store_true")
    from chimed_eval.cli.rubric_grading import add_grader_flags

    add_grader_flags(j)  # --grader-labels, --grader-min-f1, --allow-unvalidated-grader


def add_run_flags(r) -> None:
    """The judge flags of ``chimed-eval run`` (the judge runs on --output once the run succeeds)."""
    r.add_argument("--judge", default=None, metavar="MODEL[,MODEL...]",
                   help="after the run, grade its open-QA/dialogue answers with these judge models (chimed-eval judge)")
    r.add_argument("--judge-backend", default="hf", help="the judge's backend: hf (default), vllm, openai or fake")
    r.add_argument("--judge-args", default="", help="k=v,... for the judge backend")
    r.add_argument("--judge-protocol", default="pointwise", choices=("pointwise", "pairwise"))
    r.add_argument("--judge-baseline", type=Path, default=None,
                   help="the baseline run's output directory (pairwise: compared; pointwise: graded too)")
    r.add_argument("--judge-rubric", default=None, help="pointwise rubric: medical (default) or cmb-clin (the default "
                                                        "when only cmb-clin is judged)")
    r.add_argument("--judge-verdict", default="generate", choices=("generate", "logprobs"),
                   help="generate (default; parsed text) or logprobs (next-token probabilities, G-Eval)")
    from chimed_eval.cli.rubric_grading import add_grader_flags

    add_grader_flags(r)  # rubric tasks: --grader-labels, --grader-min-f1, --allow-unvalidated-grader


def default_rubric(tasks) -> str:
    """The rubric when none is named: CMB-Clin's four criteria when every judged task is ``cmb-clin``
    (its authors' measure), else ``medical``."""
    names = list(tasks or ())
    return "cmb-clin" if names and all(t == "cmb-clin" for t in names) else "medical"


def settings_from_args(a: argparse.Namespace):
    from chimed_eval.judge.store import JudgeSettings

    args = parse_kv(a.judge_args, "--judge-args")
    from chimed_eval.backends import BACKENDS, check_backend_args, run_cache

    check_backend_args(a.judge_backend, args, "--judge-args")  # before anything is written or echoed

    BACKENDS.get(a.judge_backend)  # an unknown backend fails before any data or model loads
    tasks = _names(a.tasks) or None
    return JudgeSettings(judges=_names(a.judge), backend=a.judge_backend, judge_args=args, protocol=a.protocol,
                         rubric=a.rubric or default_rubric(tasks), baseline=str(a.baseline) if a.baseline is not None else None,
                         aggregate=a.aggregate, tasks=tasks, limit=a.limit, max_new_tokens=a.max_new_tokens,
                         batch_size=a.batch_size, device=a.device, dtype=a.dtype, seed=a.seed,
                         cache=run_cache(a.judge_backend, a.no_cache, a.cache),
                         verdict=getattr(a, "verdict", "generate"))


def _judge(out: Path, settings, progress: bool) -> int:
    from chimed_eval.judge.pipeline import run_judges
    from chimed_eval.reports.judge import summary_lines

    try:
        res = run_judges(out, settings, progress=progress)
    except KeyboardInterrupt:
        print(f"\nchimed-eval: interrupted; the verdicts finished so far are saved under {out / 'judge'}/. "
              "Run the same command again to resume.", file=sys.stderr)
        return 130
    print("\n".join(summary_lines(res)))
    print(f"\njudge results: {res['path']}")
    return 0


def run(a: argparse.Namespace) -> int:
    from chimed_eval.judge.rubric import rubric_tasks

    if a.protocol is None:  # only rubric tasks: graded per criterion; else pointwise
        from chimed_eval.judge.pipeline import check_out

        check_out(a.output, "OUT")
        asked = _names(a.tasks) or _recorded(a.output)
        rubric = set(rubric_tasks(a.output, None))
        a.protocol = "rubric" if asked and all(t in rubric for t in asked) else "pointwise"
    if a.protocol != "rubric" and (a.grader_labels is not None or a.allow_unvalidated_grader):
        raise ConfigError("--grader-labels / --allow-unvalidated-grader are for rubric tasks (--protocol rubric)")
    if a.protocol == "rubric":
        from chimed_eval.cli.rubric_grading import grade

        return grade(a.output, settings_from_args(a), a, not a.no_progress)
    if a.rubric is None and not a.tasks:  # the rubric follows the tasks OUT holds
        from chimed_eval.judge.inputs import generation_tasks

        a.rubric = default_rubric(generation_tasks(a.output, None))
    return _judge(a.output, settings_from_args(a), not a.no_progress)


def _recorded(out: Path) -> list[str]:
    from chimed_eval.runs.reader import sample_tasks

    return list(sample_tasks(out))


def _run_judge_args(a: argparse.Namespace) -> argparse.Namespace:
    """The judge command's arguments from ``run``'s flags: the run's tasks, batch size, device,
    seed and cache setting; the judge's own budget (512) and dtype (its default)."""
    return argparse.Namespace(judge=a.judge, judge_backend=a.judge_backend, judge_args=a.judge_args,
                              protocol=a.judge_protocol, baseline=a.judge_baseline, rubric=a.judge_rubric,
                              aggregate=None, tasks=None, limit=None, max_new_tokens=512, batch_size=a.batch_size,
                              device=a.device, dtype=None, seed=a.seed, cache=a.cache, no_cache=a.no_cache,
                              verdict=getattr(a, "judge_verdict", "generate"), grader_labels=a.grader_labels,
                              grader_min_f1=a.grader_min_f1, allow_unvalidated_grader=a.allow_unvalidated_grader)


def check_run_flags(a: argparse.Namespace, tasks) -> None:
    """``run --judge``: refuse bad judge flags, and a run with no open-QA/dialogue task among
    ``tasks`` (the built task objects), before the run starts."""
    from chimed_eval.tasks.generation import GenerationTask

    if not a.judge:
        if a.judge_baseline is not None or a.judge_args or getattr(a, "judge_verdict", "generate") != "generate":
            raise ConfigError("--judge-baseline / --judge-args / --judge-verdict need --judge MODEL")
        if a.grader_labels is not None or a.allow_unvalidated_grader:
            raise ConfigError("--grader-labels / --allow-unvalidated-grader need --judge GRADER (rubric tasks)")
        return
    if a.data_parallel > 1:
        raise ConfigError("--judge does not combine with --data-parallel: run `chimed-eval judge OUT --judge MODEL` "
                          "on the merged output")
    settings_from_args(_run_judge_args(a))
    from chimed_eval.cli.rubric_grading import check_grader_flags

    check_grader_flags(a)
    if not any(isinstance(t, GenerationTask) for t in tasks):
        raise ConfigError("--judge grades open-QA and dialogue answers; none of --tasks is such a task "
                          "(cmd-qa, chimed-qa, mc-dialogue, covid-dialogue-zh, qa)")


def judge_after_run(a: argparse.Namespace, run) -> int:
    """Judge the run just written to ``a.output`` (its open-QA/dialogue tasks only)."""
    from chimed_eval.judge.inputs import generation_tasks

    from chimed_eval.judge.rubric import rubric_tasks

    names = [t.task for t in run.tasks]
    rubric = [t for t in rubric_tasks(a.output, None) if t in names]
    code = 0
    if rubric:
        from chimed_eval.cli.rubric_grading import grade

        g = _run_judge_args(a)
        g.tasks, g.protocol = ",".join(rubric), "rubric"
        print(f"\ngrading {g.tasks} with {a.judge} (rubric, verdict {g.verdict})")
        code = grade(a.output, settings_from_args(g), g, not a.no_progress)
    others = [t for t in generation_tasks(a.output, None, required=False) if t in names]
    if code or not others:
        return code
    j = _run_judge_args(a)
    j.tasks = ",".join(others)
    print(f"\njudging {j.tasks} with {a.judge} ({a.judge_protocol}, verdict {j.verdict})")
    return _judge(a.output, settings_from_args(j), not a.no_progress)
