"""Print the training regime's figures (markdown) from a run folder written by
``chimed-train full`` (examples/train_regime.sh): every number with its 95% bootstrap interval
and the file it comes from.

    python examples/train_figures.py runs/train-proof
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from chimed_eval.training.measure import wilson


def f(d: dict, digits: int = 3) -> str:
    return f"{d['value']:.{digits}f} [{d['ci_low']:.{digits}f}, {d['ci_high']:.{digits}f}] (n={d['n']})"


def load(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def main(root: Path) -> int:
    out = [f"# Training regime figures ({root})", ""]
    pt = load(root / "pretrain" / "metrics.json")
    if pt and "after" in pt:
        out += ["## 1. pretrain: held-out token loss on CMD text (`pretrain/metrics.json`)", "",
                f"- start model: {f(pt['before'])}, perplexity {pt['before']['perplexity']:.2f}",
                f"- after {pt['train']['steps']} steps: {f(pt['after'])}, perplexity {pt['after']['perplexity']:.2f}",
                f"- difference (after - before, paired): {f(pt['delta'])}", ""]
    sft = load(root / "sft" / "metrics.json")
    if sft and "after" in sft:
        out += ["## 2. sft: held-out answer-only loss and BLEU (`sft/metrics.json`)", "",
                f"- answer loss, pre-trained checkpoint: {f(sft['before'])}",
                f"- answer loss, after SFT ({sft['train']['steps']} steps): {f(sft['after'])}",
                f"- difference: {f(sft['delta'])}"]
        if "bleu" in sft:
            b = sft["bleu"]
            for k in ("bleu1", "bleu2"):
                out.append(f"- paper {k.upper()} (greedy): before {f(b['before'][k], 2)}, after {f(b['after'][k], 2)}, "
                           f"difference {f(b['delta'][k], 2)}")
            out.append(f"- generations that changed: {b['changed_generations']} of {b['delta']['bleu1']['n']}")
        out.append("")
    for name in ("reward", "judge"):
        rm = load(root / name / "metrics.json")
        if rm and "after_by_kind" in rm:
            out += [f"## 3. {name} model: held-out pair accuracy (`{name}/metrics.json`)", ""]
            for kind, d in sorted(rm["after_by_kind"].items()):
                lo, hi = wilson(d["value"] * d["n"], d["n"])
                out.append(f"- {kind}: {f(d)} bootstrap, [{lo:.3f}, {hi:.3f}] Wilson; mean margin "
                           f"{d['mean_margin']:.3f} (chance 0.5)")
            out += [f"- trained on {rm['data']['pairs_by_kind']} pairs, {rm['train']['steps']} steps", ""]
    rj = load(root / "rejection" / "rejection_metrics.json")
    if rj and "evaluation" in rj:
        ev = rj["evaluation"]
        sel = rj["selection"]
        out += ["## 4. rejection: sampled answers on held-out prompts, before vs after (`rejection/rejection_metrics.json`)", "",
                f"- selection: {sel['prompts']} prompts, {sel['candidates']} candidates, kept {sel['selected']} "
                f"({sel['selected_by_origin']}); mean selector reward of all samples {sel['mean_sample_reward']:.3f}, "
                f"of the kept ones {sel['mean_selected_reward']:.3f}",
                f"- evaluation: {ev['n']} held-out prompts x {ev.get('n_samples', 1)} sampled answers per model "
                f"({ev['decoding']['max_new_tokens']} new tokens, temperature {ev['decoding']['temperature']}, "
                f"top_p {ev['decoding']['top_p']}); intervals resample prompts"]
        if "answer_chars" in ev:
            out.append(f"- mean answer length (characters): before {ev['answer_chars']['before']:.1f}, "
                       f"after {ev['answer_chars']['after']:.1f}")
        for name in ("judge", "selector"):
            if name in ev:
                j = ev[name]
                out.append(f"- {name} reward: before {f(j['before'])}, after {f(j['after'])}; difference {f(j['delta'])}; "
                           f"win rate {f(j['win_rate'])}")
        if "bleu" in ev:
            for k in ("bleu1", "bleu2"):
                out.append(f"- paper {k.upper()} of the samples: before {f(ev['bleu']['before'][k], 2)}, "
                           f"after {f(ev['bleu']['after'][k], 2)}, difference {f(ev['bleu']['delta'][k], 2)}")
            parts = [(k, ev["bleu"][k].get("parts")) for k in ("before", "after")]
            if all(p for _, p in parts):
                out.append("- BLEU's parts (before -> after): " + ", ".join(
                    f"{name} {parts[0][1][name]:.3f} -> {parts[1][1][name]:.3f}"
                    for name in ("precision1", "precision2", "brevity_penalty", "length_ratio")))
        out.append("")
    res = load(root / "eval-cmd-qa" / "results.json")
    if res:
        out += ["## chimed-eval run on the final model (`eval-cmd-qa/results.json`)", ""]
        tasks = res["tasks"].values() if isinstance(res["tasks"], dict) else res["tasks"]
        for t in tasks:
            for m in t["metrics"]:
                if m["name"] in ("paper_bleu1_cum", "paper_bleu2_cum", "paper_rougeL"):
                    out.append(f"- {t['task']} {m['name']}: {m['value']:.2f} [{m['ci_low']:.2f}, {m['ci_high']:.2f}] (n={m['n']})")
        out.append("")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/train-proof")))
