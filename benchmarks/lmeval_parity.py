#!/usr/bin/env python
"""Parity and speed of chimed-eval's ``--variant lm-eval`` against lm-evaluation-harness itself.

Both harnesses score the paper's seven CMMLU medical subjects (``cmmlu-medical-paper``, 1,166
test items) on the same local CSV files and the same fp32 weights, on CPU, and this script
compares them item by item: the log-likelihood of each continuation " A".." D", the argmax
prediction, the accuracy, the rendered prompt, and the wall time of each whole command (model
loading included).

How it works
------------
* lm-eval (``.venv-lmeval``, lm-evaluation-harness 0.4.13) gets a local task set written to a temp
  dir and passed with ``--include_path``: one YAML per subject, ``parity_cmmlu_<subject>``, the same
  as lm-eval's own ``cmmlu_<subject>`` (``tasks/cmmlu/_default_template_yaml`` +
  ``cmmlu_<subject>.yaml``: doc_to_text, doc_to_choice, doc_to_target, the description with the
  Chinese subject name, ``fewshot_split: dev``, ``fewshot_config: {sampler: first_n}``,
  ``output_type: multiple_choice``, acc/acc_norm) except that the data comes from
  ``dataset_path: csv`` with ``data_files: {test: <data>/cmmlu/test/<s>.csv, dev: <data>/cmmlu/dev/<s>.csv}``.
  It runs offline (HF_DATASETS_OFFLINE=1, HF_HUB_OFFLINE=1, a private HF_DATASETS_CACHE).
* chimed-eval (this venv's ``chimed-eval``) runs ``cmmlu-medical-paper --variant lm-eval``.
* ``--limit N`` means the first N items *of each subject* in both harnesses (lm-eval's ``--limit``
  is per task, chimed-eval's is over the whole task): the script writes trimmed copies of the seven
  test CSVs (header + first N records, bytes unchanged) and copies of the dev CSVs into a temp data
  dir (layout ``cmmlu/test/<s>.csv``, ``cmmlu/dev/<s>.csv``), points both harnesses at it and
  passes neither harness a ``--limit``. Without ``--limit`` both read the real files.
* Items are matched by (subject, value of the CSV's unnamed index column): lm-eval's ``doc`` carries
  it (``Unnamed: 0``); for chimed-eval it is derived from the item's position in its subject (both
  harnesses keep file order) and checked against the item id, and every match is verified by the
  question text. The full rendered contexts are compared too (lm-eval logs them as ``arg_0``).

Run (from the repo root, with the main venv)::

    .venv/bin/python benchmarks/lmeval_parity.py --models smollm2-135m --shots 0 --limit 3
    .venv/bin/python benchmarks/lmeval_parity.py --models smollm2-135m,gemma3-270m --shots 0,5 \
        --batch-size 8 --json runs/lmeval_parity.json          # full set: slow on CPU
    .venv/bin/python benchmarks/lmeval_parity.py --models smollm2-135m --shots 5 --limit 43 --repeat 2
                                                               # issue 28's workload: 301 items, 5-shot
    .venv/bin/python benchmarks/lmeval_parity.py --models smollm2-135m --limit 5 --batch-sizes 1,8 \
        [--compare-lmeval-batch-sizes]                         # batch-size invariance

Acceptance bars (checked and printed per model/shots; the speed bars are meant for full runs:
with ``--limit`` model loading dominates the wall time and the speed verdict is indicative only):

* log-likelihood: mean |Δ| <= 0.01 nats and max |Δ| <= 0.05 nats over all (item, option) pairs;
* predictions (argmax, ties to the earlier letter) agree on 100% of items;
* accuracy within 0.3 points;
* speed ratio (chimed-eval items/s over lm-eval items/s, whole commands):
  >= 1.2x 0-shot and >= 5x 5-shot on smollm2-135m, >= 2x 0-shot on gemma3-270m; with ``--repeat N``
  the two whole commands run back to back N times (lm-eval first every other time) and the ratio
  is the median of the pairs; the machine, the date and the 1-min load average are printed with
  it (a load above half the CPUs marks the timing provisional);
* chimed-eval log-likelihoods invariant to the batch size (``--batch-sizes``) within 1e-3.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import io
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TASK = "cmmlu-medical-paper"
MIN_SPEED_ITEMS = 300  # a speed ratio is judged on at least this many items (model loading amortised)
sys.path.insert(0, str(REPO))
from chimed_eval.tasks.exams import CMMLU_PAPER as SUBJECTS  # noqa: E402  (chimed-eval's documented subject order)

LETTERS = "ABCD"
TASK_PREFIX = "parity_cmmlu_"

BARS = {
    "mean_abs_delta": 0.01,
    "max_abs_delta": 0.05,
    "agree_pct": 100.0,
    "acc_diff_pts": 0.3,
    "batch_invariance": 1e-3,
}
SPEED_BARS = {("smollm2-135m", 0): 1.2, ("smollm2-135m", 5): 5.0, ("gemma3-270m", 0): 2.0}


def machine() -> dict[str, Any]:
    """The machine and the moment a timing was taken (a ratio is only read against its own)."""
    import platform

    cpu = next((x.split(":", 1)[1].strip() for x in Path("/proc/cpuinfo").read_text().splitlines()
                if x.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {"host": platform.node(), "cpu": cpu, "cpus": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "load_1min": round(load, 2)}


def machine_line(m: dict[str, Any]) -> str:
    busy = m["load_1min"] > 0.5 * (m["cpus"] or 1)
    return (f"{m['host']}: {m['cpu']}, {m['cpus']} CPUs; {m['date']}; 1-min load {m['load_1min']}"
            + ("  (NOT alone: other load on the machine, timings provisional)" if busy else ""))


# ----------------------------------------------------------------------------- helpers
def log(msg: str = "") -> None:
    print(msg, flush=True)


def _yaml_str(s: str) -> str:
    """A YAML double-quoted scalar (JSON string syntax is valid YAML)."""
    return json.dumps(s, ensure_ascii=False)


def csv_records(path: Path) -> list[dict[str, Any]]:
    """The data records of a CSV: the index column value, first physical line, fields."""
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    out = []
    end = 0
    for rec in reader:
        start, end = end + 1, reader.line_num
        if not any(c.strip() for c in rec):
            continue
        if header is None:
            header = rec
            continue
        fields = dict(zip(header, rec))
        out.append({"index": rec[0], "line": start, "end": end, "fields": fields})
    return out


def trim_csv(src: Path, dst: Path, n: int) -> int:
    """Copy the header and the first ``n`` records of ``src`` to ``dst``, bytes unchanged."""
    raw = src.read_bytes()
    recs = csv_records(src)
    keep = recs[:n]
    dst.parent.mkdir(parents=True, exist_ok=True)
    if len(keep) == len(recs):
        dst.write_bytes(raw)
        return len(keep)
    last_line = keep[-1]["end"] if keep else 1  # physical line where the n-th record ends
    lines = re.split(rb"(?<=\n)|(?<=\r)(?!\n)", raw)  # keep line ends; \r\n stays one line
    lines = [x for x in lines if x]
    dst.write_bytes(b"".join(lines[:last_line]))
    return len(keep)


def make_data_dir(src: Path, dst: Path, limit: int | None) -> Path:
    if limit is None:
        return src
    for s in SUBJECTS:
        trim_csv(src / "cmmlu" / "test" / f"{s}.csv", dst / "cmmlu" / "test" / f"{s}.csv", limit)
        d = src / "cmmlu" / "dev" / f"{s}.csv"
        (dst / "cmmlu" / "dev").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(d, dst / "cmmlu" / "dev" / f"{s}.csv")
    return dst


def write_lmeval_tasks(task_dir: Path, data_dir: Path) -> list[str]:
    """One YAML per subject, equivalent to lm-eval 0.4.13's cmmlu_<subject>, on local CSVs."""
    task_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for s, zh in SUBJECTS.items():
        name = TASK_PREFIX + s
        test = (data_dir / "cmmlu" / "test" / f"{s}.csv").resolve()
        dev = (data_dir / "cmmlu" / "dev" / f"{s}.csv").resolve()
        desc = f"以下是关于{zh}的单项选择题，请直接给出正确答案的选项。\n\n"
        text = "\n".join([
            f"task: {name}",
            "dataset_path: csv",
            "dataset_kwargs:",
            "  data_files:",
            f"    test: {_yaml_str(str(test))}",
            f"    dev: {_yaml_str(str(dev))}",
            "test_split: test",
            "fewshot_split: dev",
            "fewshot_config:",
            "  sampler: first_n",
            "output_type: multiple_choice",
            'doc_to_text: "{{Question.strip()}}\\nA. {{A}}\\nB. {{B}}\\nC. {{C}}\\nD. {{D}}\\n答案："',
            'doc_to_choice: ["A", "B", "C", "D"]',
            "doc_to_target: \"{{['A', 'B', 'C', 'D'].index(Answer)}}\"",
            f"description: {_yaml_str(desc)}",
            "metric_list:",
            "  - metric: acc",
            "    aggregation: mean",
            "    higher_is_better: true",
            "  - metric: acc_norm",
            "    aggregation: mean",
            "    higher_is_better: true",
            "metadata:",
            "  version: 1.0",
            "",
        ])
        (task_dir / f"{name}.yaml").write_text(text, encoding="utf-8")
        names.append(name)
    return names


def resolve_model_dir(preset: str) -> str:
    from chimed_eval.models.resolve import resolve_model

    r = resolve_model(preset)
    return r.path


def chimed_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "chimed-eval"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "chimed_eval.cli.app"]


def run_timed(cmd: list[str], env: dict[str, str], log_path: Path) -> float:
    log("$ " + " ".join(shlex.quote(c) for c in cmd))
    t0 = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as f:
        proc = subprocess.run(cmd, env=env, cwd=str(REPO), stdout=f, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-4000:]
        raise SystemExit(f"command failed (exit {proc.returncode}); log {log_path}:\n{tail}")
    log(f"  -> {wall:.1f} s (log: {log_path})")
    return wall


# ----------------------------------------------------------------------------- harness runs
def run_chimed(model: str, shots: int, bs: int, data_dir: Path, out: Path, args, env) -> dict[str, Any]:
    if out.exists():
        shutil.rmtree(out)
    cmd = chimed_cmd() + [
        "run", "--model", model, "--tasks", TASK, "--variant", "lm-eval", "--shots", str(shots),
        "--batch-size", str(bs), "--device", args.device, "--dtype", "float32",
        "--output", str(out), "--data-dir", str(data_dir), "--no-progress",
        "--no-cache",  # time the model, not the response cache
    ]
    wall = run_timed(cmd, env, out.parent / f"{out.name}.log")
    recs = [json.loads(x) for x in (out / "samples" / f"{TASK}.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    return {"cmd": cmd, "wall_s": wall, "records": recs}


def run_lmeval(model_dir: str, shots: int, bs: int, tasks: list[str], task_dir: Path, out: Path, args, env) -> dict[str, Any]:
    if out.exists():
        shutil.rmtree(out)
    cmd = [
        args.lmeval_python, "-m", "lm_eval", "--model", "hf",
        "--model_args", f"pretrained={model_dir},dtype=float32",
        "--tasks", ",".join(tasks), "--num_fewshot", str(shots), "--batch_size", str(bs),
        "--device", args.device, "--log_samples", "--output_path", str(out),
        "--include_path", str(task_dir),
    ]
    wall = run_timed(cmd, env, out.parent / f"{out.name}.log")
    by_task: dict[str, list[dict[str, Any]]] = {}
    for t in tasks:
        files = sorted(out.rglob(f"samples_{t}_*.jsonl"))
        if not files:
            raise SystemExit(f"lm-eval wrote no samples file for {t} under {out}")
        rows = [json.loads(x) for x in files[-1].read_text(encoding="utf-8").splitlines() if x.strip()]
        by_task[t] = sorted(rows, key=lambda r: int(r["doc_id"]))
    return {"cmd": cmd, "wall_s": wall, "by_task": by_task}


def write_floor_requests(shots: int, data_dir: Path, path: Path) -> None:
    """chimed-eval's own requests (context, prefix, options), item order, for bare_forward.py."""
    from chimed_eval.task.options import TaskRunOptions
    from chimed_eval.tasks import get_task

    task = get_task(TASK)
    data = task.load(data_dir)
    reqs = task.build_requests(data, data.samples, TaskRunOptions("lm-eval", shots, 1234))
    with open(path, "w", encoding="utf-8") as f:
        for r in reqs:
            f.write(json.dumps({"context": r.context, "prefix": r.prefix, "continuations": list(r.continuations)},
                               ensure_ascii=False) + "\n")


def run_floor(model_dir: str, shots: int, bs: int, reqs: Path, out: Path, env) -> dict[str, Any]:
    """benchmarks/bare_forward.py as a whole command: the floor (shared prefix once when shots > 0)."""
    cmd = [sys.executable, str(REPO / "benchmarks" / "bare_forward.py"), model_dir, str(reqs), str(out),
           "--batch-size", str(bs)] + (["--prefix"] if shots > 0 else [])
    wall = run_timed(cmd, env, out.with_suffix(".log"))
    lls = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines() if x.strip()]
    return {"cmd": cmd, "wall_s": wall, "lls": lls}


# ----------------------------------------------------------------------------- parsing + matching
def _argmax(xs: list[float]) -> int:
    return max(range(len(xs)), key=lambda i: (xs[i], -i))


def lmeval_items(run: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for task, rows in run["by_task"].items():
        subj = task[len(TASK_PREFIX):]
        for r in rows:
            doc = r["doc"]
            idx_key = next((k for k in doc if k not in ("Question", "A", "B", "C", "D", "Answer")), None)
            idx = str(doc[idx_key]) if idx_key is not None else str(r["doc_id"])
            lls = [float(resp[0]) for resp in r["filtered_resps"]]
            args = r.get("arguments") or {}
            first = args.get("gen_args_0", {}) if isinstance(args, dict) else {}
            conts = [a.get("arg_1") for a in args.values()] if isinstance(args, dict) else []
            out[(subj, idx)] = {
                "doc_id": int(r["doc_id"]), "question": str(doc.get("Question", "")), "lls": lls,
                "pred": _argmax(lls), "gold": int(r["target"]), "acc": float(r.get("acc", float("nan"))),
                "context": first.get("arg_0"), "continuations": conts,
            }
    return out


def chimed_items(run: dict[str, Any], data_dir: Path) -> tuple[dict[tuple[str, str], dict[str, Any]], list[str]]:
    """Key chimed-eval's records by (subject, index column value); returns notes on ids."""
    csvs = {s: csv_records(data_dir / "cmmlu" / "test" / f"{s}.csv") for s in SUBJECTS}
    pos: dict[str, int] = {}
    out = {}
    id_schemes: set[str] = set()
    problems: list[str] = []
    for rec in run["records"]:
        subj = rec["subject"]
        k = pos.get(subj, 0)
        pos[subj] = k + 1
        row = csvs[subj][k]
        suffix = rec["id"][len(subj) + 1:] if rec["id"].startswith(subj + "-") else None
        if suffix == row["index"]:
            id_schemes.add("index column value")
        elif suffix == str(row["line"]):
            id_schemes.add("CSV line number")
        else:
            problems.append(f"{rec['id']}: position {k} of {subj} is index {row['index']} (line {row['line']})")
        q = row["fields"].get("Question", "").strip()
        if q and q not in rec.get("prompt", ""):
            problems.append(f"{rec['id']}: question {q[:30]!r} not in its prompt")
        lps = [float(x) for x in rec["logprobs"]]
        out[(subj, row["index"])] = {
            "id": rec["id"], "question": q, "lls": lps, "pred": LETTERS.index(rec["prediction"]),
            "gold": LETTERS.index(rec["gold"]), "prompt": rec.get("prompt"),
        }
    notes = [f"chimed-eval item ids use the {' / '.join(sorted(id_schemes))} after '<subject>-'"] if id_schemes else []
    if problems:
        notes.append(f"{len(problems)} chimed-eval id/question problems, e.g. {problems[:3]}")
    return out, notes


def compare(ours: dict, theirs: dict) -> dict[str, Any]:
    keys = [k for k in ours if k in theirs]
    only_ours = [k for k in ours if k not in theirs]
    only_theirs = [k for k in theirs if k not in ours]
    deltas: list[float] = []
    per_letter: list[list[float]] = [[] for _ in LETTERS]
    agree = acc_o = acc_t = 0
    q_mismatch, prompt_mismatch = [], []
    worst = None
    for k in keys:
        o, t = ours[k], theirs[k]
        if o["question"].strip() != t["question"].strip():
            q_mismatch.append(k)
        if t.get("context") is not None and o.get("prompt") is not None and t["context"] != o["prompt"]:
            prompt_mismatch.append(k)
        for i, (a, b) in enumerate(zip(o["lls"], t["lls"])):
            d = abs(a - b)
            deltas.append(d)
            per_letter[i].append(d)
            if worst is None or d > worst[0]:
                worst = (d, k, LETTERS[i], a, b)
        agree += o["pred"] == t["pred"]
        acc_o += o["pred"] == o["gold"]
        acc_t += t["pred"] == t["gold"]
        if o["gold"] != t["gold"]:
            q_mismatch.append(k)
    n = len(keys)
    res: dict[str, Any] = {
        "items": n, "only_chimed": len(only_ours), "only_lmeval": len(only_theirs),
        "mean_abs_delta": sum(deltas) / len(deltas) if deltas else float("nan"),
        "max_abs_delta": max(deltas) if deltas else float("nan"),
        "mean_abs_delta_by_option": {L: (sum(v) / len(v) if v else float("nan")) for L, v in zip(LETTERS, per_letter)},
        "agree_pct": 100.0 * agree / n if n else float("nan"),
        "acc_chimed": 100.0 * acc_o / n if n else float("nan"),
        "acc_lmeval": 100.0 * acc_t / n if n else float("nan"),
        "question_or_gold_mismatches": [f"{s}/{i}" for s, i in q_mismatch],
        "prompt_mismatches": [f"{s}/{i}" for s, i in prompt_mismatch],
        "worst": None if worst is None else {
            "abs_delta": worst[0], "item": f"{worst[1][0]}/{worst[1][1]}", "option": worst[2],
            "chimed": worst[3], "lmeval": worst[4]},
    }
    res["acc_diff_pts"] = res["acc_chimed"] - res["acc_lmeval"]
    if prompt_mismatch:
        k = prompt_mismatch[0]
        a, b = theirs[k]["context"], ours[k]["prompt"]
        res["first_prompt_diff"] = {
            "item": f"{k[0]}/{k[1]}",
            "diff": "".join(difflib.unified_diff(a.splitlines(True), b.splitlines(True), "lm-eval", "chimed-eval", n=1)),
        }
    return res


def max_delta(a: dict, b: dict) -> float:
    ds = [abs(x - y) for k in a if k in b for x, y in zip(a[k]["lls"], b[k]["lls"])]
    return max(ds) if ds else float("nan")


# ----------------------------------------------------------------------------- prompts only (no model)
_LMEVAL_RENDER = r"""
import json, sys
from lm_eval.tasks import TaskManager
include, shots, names, out = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(","), sys.argv[4]
tasks = TaskManager(include_path=include).load(names)["tasks"]
res = {}
for name, task in tasks.items():
    task.set_config(key="num_fewshot", value=shots)
    task.build_all_requests(limit=None, rank=0, world_size=1)
    by_doc = {}
    for inst in task.instances:
        by_doc.setdefault(inst.doc_id, []).append((inst.idx, inst.args, inst.doc))
    rows = []
    for doc_id in sorted(by_doc):
        insts = sorted(by_doc[doc_id], key=lambda x: x[0])
        doc = insts[0][2]
        rows.append({"doc_id": doc_id, "doc": {k: (v if isinstance(v, str) else str(v)) for k, v in doc.items()},
                     "context": insts[0][1][0], "continuations": [a[1] for _, a, _ in insts],
                     "target": task.doc_to_target(doc)})
    res[name] = rows
json.dump(res, open(out, "w", encoding="utf-8"), ensure_ascii=False)
"""


def prompts_only(shots: int, task_names: list[str], task_dir: Path, data_dir: Path, tmp: Path, args, env) -> dict[str, Any]:
    """Render every prompt with lm-eval's own task code and with chimed-eval's; compare them."""
    sys.path.insert(0, str(REPO))
    from chimed_eval.tasks import get_task  # the repo's task registry (chimed-eval's `tasks` package)
    from chimed_eval.task.options import TaskRunOptions

    helper = tmp / "render_lmeval.py"
    helper.write_text(_LMEVAL_RENDER, encoding="utf-8")
    out = tmp / f"lmeval_prompts_{shots}shot.json"
    cmd = [args.lmeval_python, str(helper), str(task_dir), str(shots), ",".join(task_names), str(out)]
    wall = run_timed(cmd, env, tmp / f"lmeval_prompts_{shots}shot.log")
    lm = json.loads(out.read_text(encoding="utf-8"))
    theirs = {}
    for name, rows in lm.items():
        subj = name[len(TASK_PREFIX):]
        for r in rows:
            doc = r["doc"]
            idx_key = next((k for k in doc if k not in ("Question", "A", "B", "C", "D", "Answer")), None)
            theirs[(subj, str(doc[idx_key]) if idx_key else str(r["doc_id"]))] = {
                "context": r["context"], "continuations": r["continuations"], "question": doc.get("Question", ""),
                "gold": int(r["target"])}
    task = get_task(TASK)
    data = task.load(data_dir)
    reqs = task.build_requests(data, data.samples, TaskRunOptions("lm-eval", shots, 1234))
    csvs = {s: csv_records(data_dir / "cmmlu" / "test" / f"{s}.csv") for s in SUBJECTS}
    pos: dict[str, int] = {}
    ours = {}
    for smp, req in zip(data.samples, reqs):
        k = pos.get(smp.subject, 0)
        pos[smp.subject] = k + 1
        ours[(smp.subject, csvs[smp.subject][k]["index"])] = {
            "id": smp.id, "context": req.context, "continuations": list(req.continuations),
            "question": smp.input, "gold": int(smp.target)}
    keys = [k for k in ours if k in theirs]
    bad = [k for k in keys if ours[k]["context"] != theirs[k]["context"]
           or ours[k]["continuations"] != theirs[k]["continuations"]
           or ours[k]["gold"] != theirs[k]["gold"]]
    diffs = []
    for k in bad:
        a, b = theirs[k]["context"], ours[k]["context"]
        diffs.append({"item": f"{k[0]}/{k[1]}", "chimed_id": ours[k]["id"],
                      "diff": "".join(difflib.unified_diff(a.splitlines(True), b.splitlines(True),
                                                           "lm-eval", "chimed-eval", n=0))})
    return {"shots": shots, "items": len(keys), "only_chimed": len(ours) - len(keys),
            "only_lmeval": len(theirs) - len(keys), "differing": len(bad), "diffs": diffs,
            "lmeval_render_wall_s": wall, "lmeval_cmd": cmd}


def print_prompts_only(r: dict[str, Any]) -> None:
    log(f"== prompts only, {r['shots']}-shot: {r['items']} items compared (only chimed-eval {r['only_chimed']}, "
        f"only lm-eval {r['only_lmeval']}); {r['differing']} differ (context, continuations or gold) ==")
    for d in r["diffs"]:
        log(f"  {d['item']} (chimed id {d['chimed_id']}):")
        for line in d["diff"].splitlines():
            # repr() of the line body so that leading/trailing spaces and U+3000 are visible
            body = line if line.startswith(("---", "+++", "@@")) else line[:1] + repr(line[1:])
            log("    " + body)


# ----------------------------------------------------------------------------- reporting
def verdicts(row: dict[str, Any], model: str, shots: int) -> dict[str, bool | None]:
    c = row["compare"]
    v: dict[str, bool | None] = {
        "loglik_mean": c["mean_abs_delta"] <= BARS["mean_abs_delta"],
        "loglik_max": c["max_abs_delta"] <= BARS["max_abs_delta"],
        "predictions": c["agree_pct"] >= BARS["agree_pct"],
        "accuracy": abs(c["acc_diff_pts"]) <= BARS["acc_diff_pts"],
    }
    bar = SPEED_BARS.get((model, shots))
    v["speed"] = None if bar is None else row["speed_ratio"] >= bar
    if row.get("batch_invariance"):
        v["batch_invariance"] = row["batch_invariance"]["chimed_max_abs_delta"] <= BARS["batch_invariance"]
    return v


def print_table(row: dict[str, Any], limited: bool) -> None:
    c = row["compare"]
    m, k = row["model"], row["shots"]
    ok = lambda b: "n/a" if b is None else ("PASS" if b else "FAIL")  # noqa: E731
    v = row["verdicts"]
    speed_bar = SPEED_BARS.get((m, k))
    lines = [
        f"== {m}, {k}-shot, batch size {row['batch_size']}"
        + (f", first {row['limit']} items per subject" if limited else ", all items") + " ==",
        f"  items compared            {c['items']}  (only chimed-eval: {c['only_chimed']}, only lm-eval: {c['only_lmeval']})",
        f"  mean |Δ loglik| / option  {c['mean_abs_delta']:.6f} nats   [bar <= {BARS['mean_abs_delta']}]  {ok(v['loglik_mean'])}",
        "    by option               " + "  ".join(f"{L} {x:.6f}" for L, x in c["mean_abs_delta_by_option"].items()),
        f"  max  |Δ loglik|           {c['max_abs_delta']:.6f} nats   [bar <= {BARS['max_abs_delta']}]  {ok(v['loglik_max'])}",
        f"    worst                   {c['worst']}",
        f"  argmax agreement          {c['agree_pct']:.2f} %   [bar >= {BARS['agree_pct']}]  {ok(v['predictions'])}",
        f"  accuracy chimed / lm-eval {c['acc_chimed']:.2f} / {c['acc_lmeval']:.2f}  (Δ {c['acc_diff_pts']:+.2f} pts)"
        f"   [bar |Δ| <= {BARS['acc_diff_pts']}]  {ok(v['accuracy'])}",
        f"  prompts differing         {len(c['prompt_mismatches'])}" + (f"  {c['prompt_mismatches'][:10]}" if c["prompt_mismatches"] else ""),
        f"  question/gold mismatches  {len(c['question_or_gold_mismatches'])}",
        f"  wall chimed-eval          {row['chimed_wall_s']:.1f} s   {row['chimed_items_per_s']:.2f} items/s",
        f"  wall lm-eval              {row['lmeval_wall_s']:.1f} s   {row['lmeval_items_per_s']:.2f} items/s",
        f"  timing pairs (ours, lm-eval) " + ", ".join(f"({a:.1f} s, {b:.1f} s)" for a, b in row["timing_pairs"])
        + f" -> ratios {', '.join(f'{x:.2f}x' for x in row['pair_ratios'])}",
        f"  machine                   {machine_line(row['machine_start'])}",
        f"  speed ratio (ours/lm-eval) {row['speed_ratio']:.2f}x (median of the pairs)   [bar >= {speed_bar if speed_bar else '-'}]  "
        + ("not judged (--limit run under 300 items: model loading dominates)"
           if limited and speed_bar and c["items"] < MIN_SPEED_ITEMS else ok(v["speed"])),
    ]
    if row.get("floor_wall_s"):
        lines.append(f"  floor (bare_forward.py)   {', '.join(f'{x:.1f} s' for x in row['floor_wall_s'])}; ours / floor "
                     f"{', '.join(f'{x:.3f}' for x in row['over_floor'])}; max |Δ loglik| vs ours {row['floor_max_abs_delta']:.2e}")
    bi = row.get("batch_invariance")
    if bi:
        lines.append(f"  batch-size invariance     chimed-eval bs {bi['batch_sizes']}: max |Δ| {bi['chimed_max_abs_delta']:.2e}"
                     f"   [bar <= {BARS['batch_invariance']}]  {ok(v.get('batch_invariance'))}")
        for bs, w in bi["chimed_wall_s"].items():
            lines.append(f"    chimed-eval bs={bs}: {w:.1f} s")
        if bi.get("lmeval_max_abs_delta") is not None:
            lines.append(f"    lm-eval bs {bi['batch_sizes']}: max |Δ| {bi['lmeval_max_abs_delta']:.2e}")
            for bs, w in bi["lmeval_wall_s"].items():
                lines.append(f"    lm-eval bs={bs}: {w:.1f} s")
    for note in row.get("notes", []):
        lines.append(f"  note: {note}")
    if c.get("first_prompt_diff"):
        lines.append(f"  first prompt difference ({c['first_prompt_diff']['item']}):")
        lines += ["    " + x for x in c["first_prompt_diff"]["diff"].splitlines()]
    log("\n".join(lines))


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="smollm2-135m", help="comma list of chimed-eval presets")
    ap.add_argument("--shots", default="0", help="comma list, e.g. 0,5")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--batch-sizes", default=None,
                    help="comma list: also run chimed-eval at each and report the max |Δ loglik| between them")
    ap.add_argument("--compare-lmeval-batch-sizes", action="store_true",
                    help="with --batch-sizes, run lm-eval at each batch size too")
    ap.add_argument("--limit", type=int, default=None, help="first N items of each subject (default: all 1,166)")
    ap.add_argument("--data-dir", default=os.environ.get("CHIMED_EVAL_DATA") or str(REPO.parent / "shared" / "data"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--lmeval-python", default=str(REPO / ".venv-lmeval" / "bin" / "python"))
    ap.add_argument("--repeat", type=int, default=1,
                    help="timing pairs per model/shots: both whole commands back to back, alternating which goes first")
    ap.add_argument("--floor", action="store_true",
                    help="also time benchmarks/bare_forward.py (the floor) in each timing pair; print ours / floor")
    ap.add_argument("--threads", type=int, default=None, help="OMP/MKL threads for both harnesses (default: unset)")
    ap.add_argument("--prompts-only", action="store_true",
                    help="no model: render every prompt with lm-eval's task code and chimed-eval's; compare")
    ap.add_argument("--json", default=None, help="write all results here")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (outputs, task YAMLs, data copies)")
    args = ap.parse_args(argv)

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    shots_list = [int(s) for s in args.shots.split(",") if s.strip()]
    extra_bs = [int(b) for b in args.batch_sizes.split(",")] if args.batch_sizes else []
    src = Path(args.data_dir).resolve()
    for s in SUBJECTS:
        for split in ("test", "dev"):
            p = src / "cmmlu" / split / f"{s}.csv"
            if not p.is_file():
                raise SystemExit(f"missing {p}")
    if not Path(args.lmeval_python).exists():
        raise SystemExit(f"no lm-eval python at {args.lmeval_python}")

    tmp = Path(tempfile.mkdtemp(prefix="lmeval_parity_"))
    log(f"temp dir: {tmp}")
    env = dict(os.environ)
    env.update(HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               HF_DATASETS_CACHE=str(tmp / "hf_datasets"), TOKENIZERS_PARALLELISM="false",
               PYTHONUNBUFFERED="1")
    env.pop("VIRTUAL_ENV", None)
    if args.threads:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    rows: list[dict[str, Any]] = []
    try:
        data_dir = make_data_dir(src, tmp / "data", args.limit)
        task_names = write_lmeval_tasks(tmp / "lmeval_tasks", data_dir)
        log(f"data: {data_dir}   lm-eval tasks: {tmp / 'lmeval_tasks'}")
        if args.prompts_only:
            for shots in shots_list:
                r = prompts_only(shots, task_names, tmp / "lmeval_tasks", data_dir, tmp, args, env)
                print_prompts_only(r)
                rows.append({"prompts_only": r})
            models = []
        for model in models:
            model_dir = resolve_model_dir(model)
            log(f"\n### {model}: {model_dir}")
            for shots in shots_list:
                tag = f"{model}_{shots}shot"
                chimed_runs: dict[int, dict[str, Any]] = {}
                lmeval_runs: dict[int, dict[str, Any]] = {}
                started = machine()
                log(f"machine: {machine_line(started)}")
                for bs in dict.fromkeys([args.batch_size] + extra_bs):
                    chimed_runs[bs] = run_chimed(model, shots, bs, data_dir, tmp / f"chimed_{tag}_bs{bs}", args, env)
                lm_bs = list(dict.fromkeys([args.batch_size] + (extra_bs if args.compare_lmeval_batch_sizes else [])))
                for bs in lm_bs:
                    lmeval_runs[bs] = run_lmeval(model_dir, shots, bs, task_names, tmp / "lmeval_tasks",
                                                 tmp / f"lmeval_{tag}_bs{bs}", args, env)
                pairs = [(chimed_runs[args.batch_size]["wall_s"], lmeval_runs[args.batch_size]["wall_s"])]
                floors: list[float] = []
                floor_delta = None
                if args.floor:
                    fr = tmp / f"floor_{tag}_requests.jsonl"
                    write_floor_requests(shots, data_dir, fr)
                    f0 = run_floor(model_dir, shots, args.batch_size, fr, tmp / f"floor_{tag}_0.jsonl", env)
                    floors.append(f0["wall_s"])
                    recs = chimed_runs[args.batch_size]["records"]
                    floor_delta = max(abs(float(a) - b) for rec, lls in zip(recs, f0["lls"])
                                      for a, b in zip(rec["logprobs"], lls))
                for k in range(1, max(1, args.repeat)):  # more pairs, lm-eval first every other time
                    tc, tl = tmp / f"chimed_{tag}_r{k}", tmp / f"lmeval_{tag}_r{k}"
                    if k % 2:
                        lw = run_lmeval(model_dir, shots, args.batch_size, task_names, tmp / "lmeval_tasks", tl, args, env)["wall_s"]
                        cw = run_chimed(model, shots, args.batch_size, data_dir, tc, args, env)["wall_s"]
                    else:
                        cw = run_chimed(model, shots, args.batch_size, data_dir, tc, args, env)["wall_s"]
                        lw = run_lmeval(model_dir, shots, args.batch_size, task_names, tmp / "lmeval_tasks", tl, args, env)["wall_s"]
                    pairs.append((cw, lw))
                    if args.floor:
                        floors.append(run_floor(model_dir, shots, args.batch_size, fr, tmp / f"floor_{tag}_{k}.jsonl",
                                                env)["wall_s"])
                ours, notes = chimed_items(chimed_runs[args.batch_size], data_dir)
                theirs = lmeval_items(lmeval_runs[args.batch_size])
                c = compare(ours, theirs)
                n_ours = len(chimed_runs[args.batch_size]["records"])
                n_theirs = sum(len(v) for v in lmeval_runs[args.batch_size]["by_task"].values())
                cw, lw = chimed_runs[args.batch_size]["wall_s"], lmeval_runs[args.batch_size]["wall_s"]
                row: dict[str, Any] = {
                    "model": model, "model_dir": model_dir, "shots": shots, "batch_size": args.batch_size,
                    "limit": args.limit, "device": args.device, "compare": c, "notes": notes,
                    "chimed_cmd": chimed_runs[args.batch_size]["cmd"], "lmeval_cmd": lmeval_runs[args.batch_size]["cmd"],
                    "chimed_wall_s": cw, "lmeval_wall_s": lw,
                    "chimed_items": n_ours, "lmeval_items": n_theirs,
                    "chimed_items_per_s": n_ours / cw, "lmeval_items_per_s": n_theirs / lw,
                }
                per_item = n_ours / n_theirs if n_theirs else float("nan")
                row["timing_pairs"] = pairs
                row["pair_ratios"] = [per_item * lw_ / cw_ for cw_, lw_ in pairs]
                row["speed_ratio"] = sorted(row["pair_ratios"])[len(pairs) // 2] if len(pairs) % 2 else \
                    sum(sorted(row["pair_ratios"])[len(pairs) // 2 - 1:len(pairs) // 2 + 1]) / 2
                row["machine_start"], row["machine_end"] = started, machine()
                if floors:
                    row["floor_wall_s"] = floors
                    row["floor_max_abs_delta"] = floor_delta
                    row["over_floor"] = [cw_ / fw for (cw_, _), fw in zip(pairs, floors)]
                if len(chimed_runs) > 1:
                    keyed = {bs: chimed_items(r, data_dir)[0] for bs, r in chimed_runs.items()}
                    base = keyed[args.batch_size]
                    bi: dict[str, Any] = {
                        "batch_sizes": list(chimed_runs),
                        "chimed_max_abs_delta": max(max_delta(base, v) for v in keyed.values()),
                        "chimed_wall_s": {bs: r["wall_s"] for bs, r in chimed_runs.items()},
                    }
                    if len(lmeval_runs) > 1:
                        lk = {bs: lmeval_items(r) for bs, r in lmeval_runs.items()}
                        bi["lmeval_max_abs_delta"] = max(max_delta(lk[args.batch_size], v) for v in lk.values())
                        bi["lmeval_wall_s"] = {bs: r["wall_s"] for bs, r in lmeval_runs.items()}
                    row["batch_invariance"] = bi
                row["verdicts"] = verdicts(row, model, shots)
                rows.append(row)
                log("")
                print_table(row, args.limit is not None)
                if args.json:  # write as we go: a later model failing keeps the earlier rows
                    _write_json(args.json, rows, args)
    finally:
        if args.keep:
            log(f"\nkept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        _write_json(args.json, rows, args)
        log(f"\nwrote {args.json}")
    failed = [f"{r['model']} {r['shots']}-shot: {k}" for r in rows for k, v in r.get("verdicts", {}).items()
              if v is False and not (k == "speed" and args.limit is not None
                                     and r.get("compare", {}).get("items", 0) < MIN_SPEED_ITEMS)]
    failed += [f"prompts {r['prompts_only']['shots']}-shot: {r['prompts_only']['differing']} differ"
               for r in rows if "prompts_only" in r and r["prompts_only"]["differing"]]
    small = any(r.get("compare", {}).get("items", MIN_SPEED_ITEMS) < MIN_SPEED_ITEMS for r in rows)
    note = " (speed not judged: --limit run under 300 items)" if args.limit is not None and small and not args.prompts_only else ""
    log(("\nall bars met" + note) if not failed else "\nbars not met: " + "; ".join(failed) + note)
    return 0


def _write_json(path: str, rows: list[dict[str, Any]], args) -> None:
    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    doc = {"bars": BARS, "speed_bars": {f"{m}/{k}-shot": v for (m, k), v in SPEED_BARS.items()},
           "args": vars(args), "runs": rows}
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(clean(doc), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
